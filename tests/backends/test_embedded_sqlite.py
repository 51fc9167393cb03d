"""The embedded backend on a SQLite file: everything survives closing and reopening it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conformance_kit import create_input, events, joined, msg, record, room_id, step

from roomwire.backends import backend_from_url
from roomwire.backends.embedded import EmbeddedBackend
from roomwire.backends.records import Loaded
from roomwire.errors import BackendError, BackendUnavailableError, SetupError, StaleLeaseError


async def opened(path: Path, namespace: str = "t") -> EmbeddedBackend:
    b = EmbeddedBackend(str(path), namespace)
    await b.open()
    return b


async def test_everything_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    a, c = room_id(), room_id()
    await b.create_room(record(a, max_players=2, meta={"map": "dust"}), create_input(mode="ctf"))
    await b.create_room(record(c, type="lobby"), create_input())
    for n in range(1, 5):
        await b.append_input(a, msg(n))  # offsets 2..5
    assert await b.reserve_seat(a, "p1", 30)
    assert await b.reserve_seat(a, "p2", 30)
    epoch = await b.acquire_lease(a, "w1", 30)
    assert epoch is not None
    await b.commit(a, epoch, step(2, events(1, 3)), history=100)
    await b.commit(a, epoch, step(3, events(4, 2), receipts=(joined("p1"),), players=1), history=100)
    await b.kv_set("forever", b"1")
    await b.kv_set("for-a-while", b"2", ttl_s=30)
    await b.aclose()

    b = await opened(path)
    try:
        assert [(r.id, r.type) for r in await b.list_rooms()] == [(a, "arena"), (c, "lobby")]
        got = await b.get_room(a)
        assert got is not None
        assert (got.max_players, got.meta, got.players, got.reserved) == (2, {"map": "dust"}, 1, 1)
        assert await b.load(a) == Loaded(snapshot=b"state@3", inbound_offset=3, last_seq=5)
        assert await b.load(c) is None
        assert list(await b.read_events(a, 0)) == list(events(1, 5))
        assert await b.read_inputs(a, 3, 100, 0) == [(4, msg(3)), (5, msg(4))]  # not yet consumed
        assert await b.read_inputs(c, 0, 100, 0) == [(1, create_input())]
        assert await b.append_input(a, msg(5)) == 6
        assert await b.kv_get("forever") == b"1"
        assert await b.kv_get("for-a-while") == b"2"
        # The lease survived: nobody else gets it, and the holder may still commit.
        assert await b.acquire_lease(a, "w2", 30) is None
        await b.commit(a, epoch, step(4, events(6, 1)), history=100)
        # Seats survived: p1 is seated, p2 holds a reservation, the room is full for others.
        assert await b.reserve_seat(a, "p1", 30)
        assert await b.reserve_seat(a, "p2", 30)
        assert not await b.reserve_seat(a, "p3", 30)
    finally:
        await b.aclose()


async def test_epochs_continue_higher_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    a, gone = room_id(), room_id()
    await b.create_room(record(a), create_input())
    await b.create_room(record(gone), create_input())
    first = await b.acquire_lease(a, "w1", 30)
    highest = await b.acquire_lease(gone, "w1", 30)
    assert first is not None and highest is not None
    await b.delete_room(gone)
    await b.aclose()

    b = await opened(path)
    try:
        again = await b.acquire_lease(a, "w1", 30)  # same owner, live lease: a new epoch
        assert again is not None and again > highest
        with pytest.raises(StaleLeaseError):
            await b.commit(a, first, step(1), history=10)
        await b.create_room(record(gone), create_input())
        assert (await b.acquire_lease(gone, "w1", 30) or 0) > again
    finally:
        await b.aclose()


async def test_ended_room_stays_gone_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    rid = room_id()
    await b.create_room(record(rid), create_input())
    epoch = await b.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await b.commit(rid, epoch, step(1, events(1, 1), ended="over"), history=10)
    await b.aclose()

    b = await opened(path)
    try:
        assert await b.get_room(rid) is None
        assert await b.list_rooms() == []
    finally:
        await b.aclose()


async def test_drop_all_empties_only_its_namespace_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    mine, theirs = await opened(path, "mine"), await opened(path, "theirs")
    await mine.create_room(record("r1"), create_input())
    await mine.kv_set("k", b"v")
    assert await mine.acquire_lease("r1", "w1", 30) is not None
    await theirs.create_room(record("r1"), create_input())
    await mine.drop_all()
    await mine.aclose()
    await theirs.aclose()

    mine, theirs = await opened(path, "mine"), await opened(path, "theirs")
    try:
        assert await mine.list_rooms() == []
        assert await mine.kv_get("k") is None
        assert [r.id for r in await theirs.list_rooms()] == ["r1"]
    finally:
        await mine.aclose()
        await theirs.aclose()


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = backend_from_url(f"sqlite://{path}", namespace="t")
    await b.open()
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await b.aclose()
    conn.close()


async def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(SetupError, match="schema version 99"):
        await opened(path)


async def test_unusable_path_raises_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError):
        await opened(tmp_path / "missing-dir" / "rw.db")


async def test_unreadable_records_raise_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    await b.create_room(record("r1"), create_input())
    await b.aclose()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE rw_inputs SET body = x'c1'")  # 0xc1: never valid MessagePack
    conn.close()

    with pytest.raises(BackendError, match="cannot read"):
        await opened(path)


async def test_hibernation_mark_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    asleep, pending = room_id(), room_id()
    for rid in (asleep, pending):
        await b.create_room(record(rid), create_input())
        epoch = await b.acquire_lease(rid, "w1", 30)
        assert epoch is not None
        await b.commit(rid, epoch, step(1), history=10)
        assert await b.hibernate(rid, "w1", epoch)
    await b.append_input(pending, msg(1))
    await b.aclose()

    b = await opened(path)
    try:
        assert [r.hibernating for r in await b.list_rooms()] == [True, True]
        assert await b.rooms_to_run() == [pending]  # asleep, but with input: due
        assert await b.acquire_lease(pending, "w2", 30) is not None
    finally:
        await b.aclose()
    b = await opened(path)
    try:
        assert [r.hibernating for r in await b.list_rooms()] == [True, False]
    finally:
        await b.aclose()


async def test_a_version_1_file_gets_the_hibernation_column(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    b = await opened(path)
    rid = room_id()
    await b.create_room(record(rid), create_input())
    await b.aclose()
    with sqlite3.connect(path) as db:  # as roomwire wrote it before the column existed
        db.execute("ALTER TABLE rw_rooms DROP COLUMN hibernating")
        db.execute("PRAGMA user_version=1")

    b = await opened(path)
    try:
        assert await b.rooms_to_run() == [rid]
        epoch = await b.acquire_lease(rid, "w1", 30)
        assert epoch is not None and await b.hibernate(rid, "w1", epoch)
    finally:
        await b.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
