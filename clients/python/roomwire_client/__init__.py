"""roomwire's asyncio Python client: lobby calls, rooms, ordered events, idempotent messages, resume.

    async with Client("http://127.0.0.1:8000") as client:
        await client.login_guest()
        room = await client.join_or_create("arena")
        await room.request("move", {"x": 1})
        async for event in room.events():
            ...

The wire protocol it speaks is specified in docs/protocol.md.
"""

from __future__ import annotations

from roomwire.protocol import Event
from roomwire.protocol.mirror import Change, StateMirror
from roomwire_client.client import Client
from roomwire_client.connection import Connection
from roomwire_client.errors import (
    AuthError,
    ClientError,
    ConnectionLostError,
    ForbiddenError,
    HistoryGoneError,
    InternalServerError,
    InvalidMessageError,
    MessageError,
    MessageTooLargeError,
    NotJoinedError,
    ProtocolViolationError,
    RateLimitedError,
    RejectedError,
    RequestTimeoutError,
    RoomClosedError,
    RoomError,
    RoomFullError,
    RoomLeftError,
    RoomNotFoundError,
    UnauthorizedError,
    UnavailableError,
    UnknownTypeError,
)
from roomwire_client.lobby import RoomInfo, Seat
from roomwire_client.room import Room

__all__ = [
    "AuthError",
    "Change",
    "Client",
    "ClientError",
    "Connection",
    "ConnectionLostError",
    "Event",
    "ForbiddenError",
    "HistoryGoneError",
    "InternalServerError",
    "InvalidMessageError",
    "MessageError",
    "MessageTooLargeError",
    "NotJoinedError",
    "ProtocolViolationError",
    "RateLimitedError",
    "RejectedError",
    "RequestTimeoutError",
    "Room",
    "RoomClosedError",
    "RoomError",
    "RoomFullError",
    "RoomInfo",
    "RoomLeftError",
    "RoomNotFoundError",
    "Seat",
    "StateMirror",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownTypeError",
]
