"""`sqlite:///path?synchronous=full`: every commit is fsynced before it returns (docs/backends.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_kit import create_input, events, record, room_id, step

from roomwire.backends import backend_from_url
from roomwire.backends.embedded import EmbeddedBackend
from roomwire.errors import SetupError

# PRAGMA synchronous answers with a number: 1 is NORMAL, 2 is FULL.
LEVELS = {"": 1, "?synchronous=normal": 1, "?synchronous=full": 2, "?synchronous=FULL": 2}


@pytest.mark.parametrize("query", list(LEVELS))
async def test_the_url_sets_sqlites_synchronous_level(tmp_path: Path, query: str) -> None:
    backend = backend_from_url(f"sqlite:///{tmp_path / 'rooms.db'}{query}")
    assert isinstance(backend, EmbeddedBackend)
    await backend.open()
    try:
        store = backend._store  # the file's connection: the only way to ask SQLite itself
        assert store is not None and store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == LEVELS[query]
        await backend.create_room(record(rid := room_id()), create_input())
        epoch = await backend.acquire_lease(rid, "w1", 60)
        assert epoch is not None
        await backend.commit(rid, epoch, step(1, events(1, 1)), history=10)
    finally:
        await backend.aclose()


def test_an_unknown_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="synchronous"):
        backend_from_url(f"sqlite:///{tmp_path / 'rooms.db'}?synchronous=off")
