"""The committed form of a room: user state, players, timers and the sequence, as MessagePack."""

from __future__ import annotations

from typing import Any

import msgspec


class PlayerRecord(msgspec.Struct, array_like=True):
    """A seated player as the room remembers them across commits."""

    id: str
    claims: dict[str, Any]
    connected: bool = True
    last_id: int = 0  # last applied client message id (promise 2)
    joined_at: float = 0.0
    session: str = ""  # `ref` of the join of the player's current connection (see DisconnectInput)


class TimerRecord(msgspec.Struct, array_like=True):
    """A pending timer: due time (wall clock), callback path or built-in name, arguments."""

    id: int
    due: float
    fn: str
    args: list[Any] = []
    every: float | None = None


class Snapshot(msgspec.Struct):
    """Everything a room needs to continue after recovery."""

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


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)
_json = msgspec.json.Encoder()


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Encode a snapshot; raises TypeError when user state holds something not serializable."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> Snapshot:
    """Decode a snapshot written by `encode_snapshot`."""
    return _decoder.decode(data)


def check_event_data(type: str, data: Any) -> None:
    """Raise TypeError unless both wire codecs can encode an event's data.

    MessagePack refuses integers outside -2^63 ... 2^64-1, JSON refuses ext values and keys that
    are neither strings nor numbers, and both refuse objects they do not know. Two C-level
    encodes (a fraction of a microsecond for a small event) are the cheapest sound proof.
    """
    try:
        _encoder.encode(data)
        _json.encode(data)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:  # OverflowError is a ValueError
        raise TypeError(f"event {type!r} holds data that cannot be sent to every client: {exc}") from exc
