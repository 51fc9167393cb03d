"""The public API is what `roomwire.__all__` says: a change to it is a deliberate, visible change."""

from __future__ import annotations

import roomwire
import roomwire_client

ROOMWIRE_API = {
    "App", "AuthError", "BackendError", "ForbiddenError", "GatewaySettings", "Identity", "Player",
    "ProtocolError", "RejectedError", "Room", "RoomError", "RoomPolicy", "RoomType", "RoomwireError",
    "SetupError", "UnauthorizedError", "ValidationError", "__version__",
}  # fmt: skip


def test_roomwire_exports_exactly_its_public_api() -> None:
    assert set(roomwire.__all__) == ROOMWIRE_API
    for name in roomwire.__all__:
        assert getattr(roomwire, name) is not None


def test_every_public_name_has_a_docstring() -> None:
    for name in roomwire.__all__:
        obj = getattr(roomwire, name)
        if callable(obj):
            assert obj.__doc__, f"roomwire.{name} has no docstring"


def test_client_exports_resolve() -> None:
    for name in roomwire_client.__all__:
        assert getattr(roomwire_client, name) is not None
