"""Choose what `roomwire bench` sends: a message type and data the game's schema accepts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from roomwire.runtime.roomtype import MessageHandler, RoomType

_MISSING = object()


class BenchMessageError(Exception):
    """No message can be chosen or the given data does not fit; the text says what to pass."""


@dataclass(frozen=True)
class BenchMessage:
    """A message type and the data every bot sends with it."""

    type: str
    data: Any
    derived: bool  # True when the data was made up from the handler's schema


def choose_message(room_type: RoomType, message: str | None, data_json: str | None) -> BenchMessage:
    """The message the bots send: the one named, or the first that needs no data, or the first.

    Data given as JSON is checked against the handler's schema here, so a bench never sends
    hundreds of messages that the room refuses for their shape; data not given is derived from
    the schema (the smallest value that passes: empty for raw or optional data).
    """
    handlers = room_type.handlers
    if not handlers:
        raise BenchMessageError(f"room type {room_type.name!r} has no message handlers to bench")
    data: Any = _MISSING
    if data_json is not None:
        try:
            data = json.loads(data_json)
        except json.JSONDecodeError as exc:
            raise BenchMessageError(f"--data is not JSON: {exc}") from exc
    if message is not None:
        handler = handlers.get(message)
        if handler is None:
            raise BenchMessageError(
                f"room type {room_type.name!r} has no handler for {message!r}; it has: {', '.join(handlers)}"
            )
    elif data is not _MISSING:
        # Data without a type: the first handler whose schema accepts it.
        handler = next((h for h in handlers.values() if _accepts(h, data)), None)
        if handler is None:
            raise BenchMessageError(
                f"no message type of {room_type.name!r} accepts --data {data_json}; name one with --message"
            )
    else:
        # Without --message, prefer a message that needs no data: a derived position, move or
        # answer is rarely one the game's rules accept from every bot at every moment.
        handler = next((h for h in handlers.values() if _accepts(h, None)), next(iter(handlers.values())))
    if data is _MISSING:
        return BenchMessage(handler.type, _example(handler), derived=True)
    if not _accepts(handler, data):
        raise BenchMessageError(
            f"--data does not match the {handler.type!r} handler's schema: {_why(handler, data)}"
        )
    return BenchMessage(handler.type, data, derived=False)


def _accepts(handler: MessageHandler, data: Any) -> bool:
    if handler.schema is None:
        return True
    try:
        msgspec.convert(data, handler.schema)
    except (msgspec.ValidationError, TypeError):
        return False
    return True


def _why(handler: MessageHandler, data: Any) -> str:
    try:
        msgspec.convert(data, handler.schema)
    except (msgspec.ValidationError, TypeError) as exc:
        return str(exc)
    return "accepted"


def _example(handler: MessageHandler) -> Any:
    if handler.schema is None or _accepts(handler, None):
        return None
    try:
        value = _value(mi.type_info(handler.schema))
    except (TypeError, ValueError) as exc:
        raise BenchMessageError(
            f"cannot make up data for {handler.type!r} ({exc}); pass it with --data '<json>'"
        ) from exc
    if value is _MISSING or not _accepts(handler, value):
        raise BenchMessageError(
            f"cannot make up data that the {handler.type!r} handler's schema accepts; "
            "pass it with --data '<json>'"
        )
    return value


def _number(t: mi.IntType | mi.FloatType, zero: float) -> float:
    low = t.ge if t.ge is not None else t.gt
    high = t.le if t.le is not None else t.lt
    value = zero
    if low is not None and value <= low:
        value = low if t.ge is not None else low + 1
    if high is not None and value >= high:
        value = high if t.le is not None else high - 1
    if t.multiple_of:
        value = value - value % t.multiple_of
    return value


def _value(t: mi.Type) -> Any:
    """The simplest JSON value of type `t` (constraints at their lower end), or _MISSING."""
    if isinstance(t, mi.NoneType | mi.AnyType):
        return None
    if isinstance(t, mi.BoolType):
        return False
    if isinstance(t, mi.IntType):
        return int(_number(t, 0))
    if isinstance(t, mi.FloatType):
        return float(_number(t, 0.0))
    if isinstance(t, mi.StrType):
        return "a" * (t.min_length or 0)
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.EnumType):
        return next(iter(t.cls)).value
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        item = _value(t.item_type)
        return [item] * (t.min_length or 0) if item is not _MISSING else _MISSING
    if isinstance(t, mi.TupleType):
        items = [_value(i) for i in t.item_types]
        return _MISSING if _MISSING in items else items
    if isinstance(t, mi.DictType):
        return {}
    if isinstance(t, mi.StructType | mi.TypedDictType | mi.DataclassType):
        out: dict[str, Any] = {}
        for f in t.fields:
            if f.required:
                out[f.encode_name] = _value(f.type)
                if out[f.encode_name] is _MISSING:
                    return _MISSING
        if isinstance(t, mi.StructType) and t.tag_field is not None:
            out[t.tag_field] = t.tag
        return out
    if isinstance(t, mi.UnionType):
        for option in t.types:
            value = _value(option)
            if value is not _MISSING:
                return value
    return _MISSING
