"""Sans-I/O wire protocol: frames, codecs, limits and codes. No sockets, no asyncio, no clock."""

from __future__ import annotations

from roomwire.protocol.codec import DEFAULT_MAX_FRAME_BYTES, JSON, MSGPACK, SUBPROTOCOLS, Codec, codec_for
from roomwire.protocol.codes import CloseCode, ErrorCode
from roomwire.protocol.frames import (
    PROTOCOL_VERSION,
    Ack,
    ClientFrame,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    Msg,
    Ping,
    Pong,
    Reject,
    ServerFrame,
    Welcome,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "JSON",
    "MSGPACK",
    "PROTOCOL_VERSION",
    "SUBPROTOCOLS",
    "Ack",
    "ClientFrame",
    "CloseCode",
    "Codec",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "Msg",
    "Ping",
    "Pong",
    "Reject",
    "ServerFrame",
    "Welcome",
    "codec_for",
]
