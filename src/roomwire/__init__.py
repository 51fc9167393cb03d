"""roomwire: realtime multiplayer game backends from lobby routes and per-room message handlers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from roomwire.app import App
from roomwire.errors import (
    AuthError,
    BackendError,
    ForbiddenError,
    ProtocolError,
    RejectedError,
    RoomError,
    RoomwireError,
    SetupError,
    UnauthorizedError,
    ValidationError,
)
from roomwire.gateway.asgi import GatewaySettings
from roomwire.gateway.auth import Identity
from roomwire.runtime.policy import RoomPolicy
from roomwire.runtime.room import Player, Room
from roomwire.runtime.roomtype import RoomType

try:
    __version__ = version("roomwire")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "App",
    "AuthError",
    "BackendError",
    "ForbiddenError",
    "GatewaySettings",
    "Identity",
    "Player",
    "ProtocolError",
    "RejectedError",
    "Room",
    "RoomError",
    "RoomPolicy",
    "RoomType",
    "RoomwireError",
    "SetupError",
    "UnauthorizedError",
    "ValidationError",
    "__version__",
]
