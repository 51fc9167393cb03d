"""The `backend` fixture: every backend test runs once per engine (memory, sqlite, redis)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conformance_kit import NewRoom, create_input, new_namespace, record, room_id

from roomwire.backends import Backend, backend_from_url

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture(params=["memory", "sqlite", "redis"])
def engine_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    require_engine: Callable[[str, str, int], None],
    skip_or_fail: Callable[[str], None],
) -> str:
    """The URL of one engine; skips (fails in CI) when its backend or server is missing."""
    kind: str = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'rw.db'}"  # tmp_path is absolute: sqlite:///tmp/.../rw.db
    try:
        importlib.import_module(f"roomwire.backends.{kind}")
    except ImportError as exc:
        skip_or_fail(f"the {kind} backend cannot be imported: {exc}")
    require_engine(kind, REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def backend(engine_url: str) -> AsyncIterator[Backend]:
    """An open backend on its own namespace; dropped and closed after the test."""
    b = backend_from_url(engine_url, namespace=new_namespace())
    await b.open()
    try:
        yield b
    finally:
        await b.drop_all()
        await b.aclose()


@pytest.fixture
def new_room(backend: Backend) -> NewRoom:
    """`await new_room(max_players=4, type="arena")`: create a room, return its id."""

    async def create(*, max_players: int = 4, type: str = "arena", **fields: object) -> str:
        rid = room_id()
        await backend.create_room(record(rid, type=type, max_players=max_players, **fields), create_input())
        return rid

    return create


@pytest.fixture
async def room(new_room: NewRoom) -> str:
    """One fresh room (max 4 players); its create input is at offset 1."""
    return await new_room()
