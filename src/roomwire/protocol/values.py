"""Wire values: what message and event data may hold so that every codec carries it the same way.

A value reaches players of both codecs (a MessagePack client's message becomes a JSON client's
event), so data is limited to what JSON and MessagePack both represent alike: null, booleans,
strings, finite floats, integers in MessagePack's range (-2^63 ... 2^64-1), lists, and maps with
string keys, nested at most MAX_DEPTH levels. Refused: MessagePack ext values and timestamps,
binary strings, non-string keys, NaN and infinities, (from JSON) integers MessagePack cannot
encode, and deeper nesting.

Why a fixed depth: msgspec's encoders and decoders stop at Python's recursion limit counted from
the caller's stack, so a value nested near that limit encodes in one place (a room's checkpoint)
and raises RecursionError in another (the fan-out, a deeper stack, inside a frame). A bound far
below the limit makes "can be encoded" the same everywhere.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from roomwire.protocol.errors import ProtocolError

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
MAX_DEPTH: Final = 100  # levels of lists and maps in message data and lobby values (protocol §3)
# Event data may nest a little deeper, so that game code can wrap what a client sent.
MAX_EVENT_DEPTH: Final = 128
# An event's data, encoded (MessagePack or JSON), at most this many bytes: well within every
# connection's send queue (GatewaySettings.max_queue_bytes, 8 MiB, half of it while a resume
# streams), so any event can reach a client that reads and a resume never meets one it cannot send.
MAX_EVENT_BYTES: Final = 1024 * 1024
_msgpack: Final = msgspec.msgpack.Encoder()
_NONE = type(None)


def check_json_value(value: Any, what: str = "data", raw: bytes | str | None = None) -> None:
    """`check_value` for a value decoded from JSON, where only integers can be out of range.

    JSON gives only strings, finite floats, booleans, null, lists, string-keyed maps and
    integers; of these only an integer outside -2^63 ... 2^64-1 is refused, and it is exactly what
    MessagePack cannot encode. Encoding is one C-level pass (about 0.1 µs for a small map),
    several times cheaper than walking the value in Python; the walk runs only to say why.
    Depth is walked only when `raw` (the JSON text the value came from, when known) holds more
    brackets than MAX_DEPTH: the depth of a value cannot exceed its count of `[` and `{`.
    """
    try:
        _msgpack.encode(value)
    except (OverflowError, TypeError, msgspec.EncodeError):
        check_value(value, what)
        raise ProtocolError(f"{what} cannot be encoded") from None
    if raw is not None and _brackets(raw) <= MAX_DEPTH:
        return
    if too_deep(value):
        raise ProtocolError(f"{what} is nested deeper than {MAX_DEPTH} levels")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if `value` nests lists and maps more than `limit` levels deep."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    # Level by level, not recursively: a call per container cost twice as much for wide values.
    level: list[Any] = [value]
    for _ in range(limit):
        deeper: list[Any] = []
        add = deeper.append
        for container in level:
            for sub in container.values() if type(container) is dict else container:
                kind = type(sub)
                if kind is list or kind is dict:
                    add(sub)
        if not deeper:
            return False
        level = deeper
    return True


def _brackets(text: bytes | str) -> int:
    # An upper bound of the nesting of JSON text (brackets inside strings count too): C-speed.
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def check_value(value: Any, what: str = "data", max_depth: int = MAX_DEPTH) -> None:
    """Raise ProtocolError unless `value` is plain data every codec carries alike (see module doc)."""
    try:
        _check(value, max_depth)
    except _Bad as bad:
        raise ProtocolError(f"{what} holds {bad}") from None
    except _TooDeep:
        raise ProtocolError(f"{what} holds lists and maps nested deeper than {max_depth} levels") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None


class _Bad(Exception):
    """Internal: the description of the first value that is refused."""


class _TooDeep(Exception):
    """Internal: the value nests deeper than the walk's limit."""


def _check(value: Any, depth: int) -> None:
    # Recursive with the scalar cases inlined: a small dict costs one call, not one per value.
    kind = type(value)
    if (kind is dict or kind is list) and depth <= 0:
        raise _TooDeep
    if kind is dict:
        for key, sub in value.items():
            if type(key) is not str:
                raise _Bad(f"a map key of type {_wire_name(key)}; keys must be strings")
            kind = type(sub)
            if kind is str or kind is bool or kind is _NONE:
                continue
            if kind is int:
                if not INT_MIN <= sub <= INT_MAX:
                    raise _Bad(_wide(sub))
            elif kind is float:
                if sub - sub != 0.0:  # NaN and infinities
                    raise _Bad(f"{sub}, which JSON cannot carry")
            else:
                _check(sub, depth - 1)
    elif kind is list:
        for sub in value:
            kind = type(sub)
            if kind is str or kind is bool or kind is _NONE:
                continue
            if kind is int:
                if not INT_MIN <= sub <= INT_MAX:
                    raise _Bad(_wide(sub))
            elif kind is float:
                if sub - sub != 0.0:
                    raise _Bad(f"{sub}, which JSON cannot carry")
            else:
                _check(sub, depth - 1)
    elif kind is str or kind is bool or kind is _NONE:
        return
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _Bad(_wide(value))
    elif kind is float:
        if value - value != 0.0:
            raise _Bad(f"{value}, which JSON cannot carry")
    else:
        raise _Bad(f"a value of type {_wire_name(value)}, which not every codec carries")


def _wide(value: int) -> str:
    # Not the digits: a long integer makes a long message (and str() refuses over 4300 digits).
    bits = value.bit_length()
    shown = f"the integer {value}" if bits <= 128 else f"an integer of {bits} bits"
    return f"{shown}, outside -2^63 ... 2^64-1"


def _wire_name(value: Any) -> str:
    name = type(value).__name__
    return {"Ext": "MessagePack ext", "datetime": "MessagePack timestamp", "bytes": "binary"}.get(name, name)
