"""The committed form of a room: user state, players, timers and the sequence, as MessagePack."""

from __future__ import annotations

from typing import Any

import msgspec

from roomwire.protocol.errors import ProtocolError
from roomwire.protocol.values import MAX_EVENT_BYTES, MAX_EVENT_DEPTH, check_value


class PlayerRecord(msgspec.Struct, array_like=True):
    """A seated player as the room remembers them across commits."""

    id: str
    claims: dict[str, Any]
    connected: bool = True
    last_id: int = 0  # last applied client message id (promise 2)
    joined_at: float = 0.0
    session: str = ""  # `ref` of the join of the player's current connection (see DisconnectInput)
    # Ids below last_id that the room skipped (not consumed), as flat [lo, hi, lo, hi, ...]
    # ranges, oldest first; ids at or below `floor` are no longer known (see runtime/ids.py).
    gaps: list[int] = []
    floor: int = 0


class DepartedRecord(msgspec.Struct, array_like=True):
    """What a room keeps of a removed player so that message ids stay deduplicated (promise 2)."""

    last_id: int
    gaps: list[int]
    floor: int
    at: float  # when the player was removed (wall clock)


class TimerRecord(msgspec.Struct, array_like=True):
    """A pending timer: due time (wall clock), callback path or built-in name, arguments."""

    id: int
    due: float
    fn: str
    args: list[Any] = []
    every: float | None = None


class Snapshot(msgspec.Struct, omit_defaults=True):
    """Everything a room needs to continue after recovery.

    Encoded without default values, so `departed` and `banned` cost nothing while empty.
    """

    type: str
    state: dict[str, Any]
    players: dict[str, PlayerRecord]
    timers: list[TimerRecord]
    seq: int = 0
    next_timer_id: int = 1
    created_at: float = 0.0
    code_version: str = ""
    next_tick: float | None = None
    ever_joined: bool = False
    departed: dict[str, DepartedRecord] = {}  # removed players' message ids, oldest departure first
    banned: dict[str, str] = {}  # player → reason: refused for the room's life (room.kick(ban=True))


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)
_json = msgspec.json.Encoder()
_any = msgspec.msgpack.Decoder()


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Encode a snapshot; raises TypeError when user state holds something not serializable."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> Snapshot:
    """Decode a snapshot written by `encode_snapshot`."""
    return _decoder.decode(data)


def freeze_event_data(event_type: str, data: Any) -> Any:
    """Prove both wire codecs carry an event's data alike; return a copy no later code can change.

    MessagePack refuses integers outside -2^63 ... 2^64-1, JSON refuses ext values and keys that
    are neither strings nor numbers, and both refuse objects they do not know (TypeError then).
    Others encode in both but not alike (NaN is `null` in JSON, an int key a string, bytes
    base64, a datetime a MessagePack timestamp): the MessagePack round trip must hold only
    plain data (protocol.values), so players of both codecs see the same value. Nesting is
    bounded there too: a value near Python's recursion limit encodes here yet fails in the
    fan-out's deeper stack. (Objects the codecs turn into plain data alike, such as UUIDs,
    enums and Structs, arrive as that data.) Its encoded size is bounded by MAX_EVENT_BYTES.
    The copy is the MessagePack round trip: game code often broadcasts a list or dict it keeps in
    its state, and a later step changing that object must not change an event already emitted
    (nor the history a resume replays). About 1 µs for a small event; a 600-entry list of maps
    about 0.7 ms, half of it the walk.
    """
    kind = type(data)
    if data is None or kind is str or kind is bool:
        return data  # immutable and carried by every codec
    try:
        packed = _encoder.encode(data)
        text = _json.encode(data)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
        # Overflow: a wide int; RecursionError: nested past what the encoder can reach here.
        raise TypeError(
            f"event {event_type!r} holds data that cannot be sent to every client: {exc}"
        ) from exc
    size = max(len(packed), len(text))
    if size > MAX_EVENT_BYTES:
        # A larger one would overflow a connection's send queue (close 4002) on every delivery
        # and every resume that replays it, for as long as the history keeps it.
        raise TypeError(
            f"event {event_type!r} is {size} bytes encoded; events are limited to {MAX_EVENT_BYTES} bytes"
        )
    copy = _any.decode(packed)
    try:
        check_value(copy, "its data", MAX_EVENT_DEPTH)  # plain data only after the round trip
    except ProtocolError as exc:
        raise TypeError(f"event {event_type!r} cannot reach every client alike: {exc}") from None
    return copy
