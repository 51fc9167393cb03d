"""The embedded backend's own choices, beyond the conformance suite (memory and SQLite modes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conformance_kit import WAIT_S, Collector, create_input, events, eventually, msg, record, room_id, step

from roomwire.backends.embedded import EmbeddedBackend
from roomwire.backends.records import Published
from roomwire.errors import BackendUnavailableError, RoomNotFoundError


@pytest.fixture(params=["memory", "sqlite"])
async def embedded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EmbeddedBackend]:
    """An open embedded backend, in memory or on a file."""
    b = EmbeddedBackend(str(tmp_path / "rw.db") if request.param == "sqlite" else None, "t")
    await b.open()
    try:
        yield b
    finally:
        await b.open()  # no-op unless the test closed it
        await b.drop_all()
        await b.aclose()


@pytest.fixture
async def room(embedded: EmbeddedBackend) -> str:
    rid = room_id()
    await embedded.create_room(record(rid), create_input())
    return rid


async def test_calls_before_open_raise_backend_unavailable(tmp_path: Path) -> None:
    for path in (None, str(tmp_path / "rw.db")):
        b = EmbeddedBackend(path, "t")
        with pytest.raises(BackendUnavailableError, match="open"):
            await b.create_room(record("r"), create_input())
        with pytest.raises(BackendUnavailableError):
            await b.append_input("r", msg(1))


async def test_load_and_read_inputs_of_unknown_room_raise(embedded: EmbeddedBackend) -> None:
    with pytest.raises(RoomNotFoundError):
        await embedded.load("no-such-room")
    with pytest.raises(RoomNotFoundError):
        await embedded.read_inputs("no-such-room", 0, 10, 0)


async def test_waiting_reader_raises_when_its_room_is_deleted(embedded: EmbeddedBackend, room: str) -> None:
    reader = asyncio.create_task(embedded.read_inputs(room, 1, 10, WAIT_S))
    await asyncio.sleep(0)  # let it start waiting
    await embedded.delete_room(room)
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(RoomNotFoundError):
            await reader


async def test_waiting_reader_raises_when_its_room_ends(embedded: EmbeddedBackend, room: str) -> None:
    epoch = await embedded.acquire_lease(room, "w1", 30)
    assert epoch is not None
    reader = asyncio.create_task(embedded.read_inputs(room, 1, 10, WAIT_S))
    await asyncio.sleep(0)
    await embedded.commit(room, epoch, step(1, ended="over"), history=10)
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(RoomNotFoundError):
            await reader


async def test_waiting_reader_raises_when_the_backend_closes(embedded: EmbeddedBackend, room: str) -> None:
    reader = asyncio.create_task(embedded.read_inputs(room, 1, 10, WAIT_S))
    await asyncio.sleep(0)
    await embedded.aclose()
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(BackendUnavailableError):
            await reader


async def test_reopened_backend_keeps_its_data(embedded: EmbeddedBackend, room: str) -> None:
    offset = await embedded.append_input(room, msg(1))
    await embedded.kv_set("k", b"v")
    await embedded.aclose()
    await embedded.open()
    assert await embedded.read_inputs(room, 1, 10, 0) == [(offset, msg(1))]
    assert await embedded.kv_get("k") == b"v"


async def test_callbacks_run_inside_the_call(embedded: EmbeddedBackend, room: str) -> None:
    watched: Collector[str] = Collector()
    published: Collector[Published] = Collector()
    unwatch, unsubscribe = embedded.watch_inputs(watched), embedded.subscribe(room, published)
    try:
        await embedded.append_input(room, msg(1))
        assert watched.items == [room]
        epoch = await embedded.acquire_lease(room, "w1", 30)
        assert epoch is not None
        await embedded.commit(room, epoch, step(2, events(1, 1)), history=10)
        assert [p.events for p in published.items] == [events(1, 1)]
    finally:
        unwatch()
        unsubscribe()


async def test_a_failing_watcher_breaks_neither_append_nor_others(
    embedded: EmbeddedBackend, room: str
) -> None:
    def broken(room_id: str) -> None:
        raise RuntimeError("watcher bug")

    healthy: Collector[str] = Collector()
    unwatch = [embedded.watch_inputs(broken), embedded.watch_inputs(healthy)]
    try:
        assert await embedded.append_input(room, msg(1)) == 2
        assert healthy.items == [room]
    finally:
        for u in unwatch:
            u()


async def test_append_without_waiting_continues_the_log_and_wakes_the_reader(
    embedded: EmbeddedBackend, room: str
) -> None:
    # The gateway appends a message from the socket's callback with it: same log, same offsets.
    append_now = embedded.append_input_nowait
    watched: Collector[str] = Collector()
    unwatch = embedded.watch_inputs(watched)
    reader = asyncio.create_task(embedded.read_inputs(room, 1, 10, None))  # until an input wakes it
    await asyncio.sleep(0)  # let the reader start waiting (a yield, not a wait for something)
    try:
        assert append_now(room, msg(1)) == 2
        assert await embedded.append_input(room, msg(2)) == 3
        assert append_now(room, msg(3)) == 4
        assert watched.items == [room, room, room]
        async with asyncio.timeout(WAIT_S):
            assert await reader == [(2, msg(1)), (3, msg(2)), (4, msg(3))]
    finally:
        unwatch()


async def test_append_without_waiting_refuses_an_unknown_room_or_a_closed_backend(
    embedded: EmbeddedBackend, room: str
) -> None:
    with pytest.raises(RoomNotFoundError):
        embedded.append_input_nowait("no-such-room", msg(1))
    await embedded.aclose()
    with pytest.raises(BackendUnavailableError):
        embedded.append_input_nowait(room, msg(1))


async def test_committed_inputs_are_dropped(embedded: EmbeddedBackend, room: str) -> None:
    for n in range(1, 5):
        await embedded.append_input(room, msg(n))
    epoch = await embedded.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await embedded.commit(room, epoch, step(3), history=10)
    assert [o for o, _ in await embedded.read_inputs(room, 0, 100, 0)] == [4, 5]


async def test_expired_lease_stays_current_until_someone_takes_it(
    embedded: EmbeddedBackend, room: str
) -> None:
    epoch = await embedded.acquire_lease(room, "w1", 0.05)
    assert epoch is not None
    deadline = time.monotonic() + 0.1

    async def expired() -> bool:
        return time.monotonic() > deadline

    await eventually(expired)  # expiry is time-based
    await embedded.commit(room, epoch, step(1), history=10)
    await embedded.renew_lease(room, "w1", epoch, 30)
    assert await embedded.acquire_lease(room, "w2", 30) is None


async def test_memory_mode_passes_records_without_copying() -> None:
    b = EmbeddedBackend(None, "t")
    await b.open()
    rid = room_id()
    await b.create_room(record(rid), create_input())
    item = msg(1)
    await b.append_input(rid, item)
    ((_, got),) = await b.read_inputs(rid, 1, 10, 0)
    assert got is item  # no serialization on the hot path
    await b.aclose()
