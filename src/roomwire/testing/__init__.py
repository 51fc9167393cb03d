"""Testing helpers for game developers: RoomTester (no sockets) and serve_app (a real server)."""

from __future__ import annotations

from roomwire.testing.server import serve_app
from roomwire.testing.tester import RoomTester, TestPlayer

__all__ = ["RoomTester", "TestPlayer", "serve_app"]
