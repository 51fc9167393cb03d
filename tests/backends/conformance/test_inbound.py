"""Conformance: the inbound log (append, read, wait, watch)."""

from __future__ import annotations

import asyncio

import pytest
from conformance_kit import WAIT_S, Collector, NewRoom, create_input, msg, step

from roomwire.backends import Backend
from roomwire.errors import RoomNotFoundError


async def test_create_input_is_the_first_input_at_offset_1(backend: Backend, room: str) -> None:
    assert await backend.read_inputs(room, 0, 10, 0) == [(1, create_input())]


async def test_inputs_are_read_in_append_order(backend: Backend, room: str) -> None:
    offsets = [await backend.append_input(room, msg(n)) for n in range(1, 6)]

    assert offsets == [2, 3, 4, 5, 6]
    got = await backend.read_inputs(room, 1, 100, 0)
    assert got == [(o, msg(n)) for o, n in zip(offsets, range(1, 6), strict=True)]


async def test_read_inputs_returns_only_after_and_at_most_limit(backend: Backend, room: str) -> None:
    for n in range(1, 6):
        await backend.append_input(room, msg(n))

    assert [o for o, _ in await backend.read_inputs(room, 2, 2, 0)] == [3, 4]
    assert [o for o, _ in await backend.read_inputs(room, 4, 100, 0)] == [5, 6]
    assert await backend.read_inputs(room, 6, 100, 0) == []


# The reader's own deadline is far past the test's wait: only the append can end its read.
LONG_WAITS = pytest.mark.parametrize("timeout_s", [12 * WAIT_S, None], ids=["deadline", "no-deadline"])


@LONG_WAITS
async def test_read_inputs_waits_for_append(backend: Backend, room: str, timeout_s: float | None) -> None:
    reader = asyncio.create_task(backend.read_inputs(room, 1, 10, timeout_s))
    await asyncio.sleep(0)  # let the reader start waiting (a yield, not a wait for something)
    assert not reader.done()

    offset = await backend.append_input(room, msg(7))

    async with asyncio.timeout(WAIT_S):
        assert await reader == [(offset, msg(7))]


async def test_read_inputs_gives_up_empty_after_timeout(backend: Backend, room: str) -> None:
    assert await backend.read_inputs(room, 1, 10, 0.05) == []


async def test_concurrent_appends_get_distinct_increasing_offsets(
    backend: Backend, new_room: NewRoom
) -> None:
    a, b = await new_room(), await new_room()
    items = [(rid, msg(n, player=f"p{n % 3}")) for n in range(1, 41) for rid in (a, b)]

    offsets = await asyncio.gather(*(backend.append_input(rid, item) for rid, item in items))

    for rid in (a, b):
        mine = [(o, item) for (r, item), o in zip(items, offsets, strict=True) if r == rid]
        assert sorted(o for o, _ in mine) == list(range(2, 42))  # distinct, no gaps
        assert await backend.read_inputs(rid, 1, 100, 0) == sorted(mine, key=lambda p: p[0])


async def test_append_input_to_unknown_room_raises(backend: Backend) -> None:
    with pytest.raises(RoomNotFoundError):
        await backend.append_input("no-such-room", msg(1))


async def test_reading_after_a_commit_gives_the_inputs_not_yet_consumed(backend: Backend, room: str) -> None:
    for n in range(1, 5):
        await backend.append_input(room, msg(n))
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.commit(room, epoch, step(3), history=10)

    assert await backend.read_inputs(room, 3, 100, 0) == [(4, msg(3)), (5, msg(4))]
    assert (await backend.append_input(room, msg(5))) == 6


async def test_watchers_are_told_after_each_append(backend: Backend, new_room: NewRoom) -> None:
    watcher: Collector[str] = Collector()
    unwatch = backend.watch_inputs(watcher)
    try:
        a = await new_room()  # a new room's create input wakes workers too
        await watcher.wait_until(lambda ids: a in ids)
        b = await new_room()
        await watcher.wait_until(lambda ids: b in ids)
        mark = len(watcher.items)
        await backend.append_input(a, msg(1))
        await watcher.wait_until(lambda ids: a in ids[mark:])
    finally:
        unwatch()


async def test_unwatched_callback_is_not_called_again(backend: Backend, room: str, new_room: NewRoom) -> None:
    old: Collector[str] = Collector()
    unwatch_old = backend.watch_inputs(old)
    await backend.append_input(room, msg(1))
    await old.wait_for(1)
    unwatch_old()
    unwatch_old()  # a second call is harmless
    # Redis may still deliver wakes of `room` sent before (its creation's too): count only what
    # comes after, for a room nobody has seen yet.
    seen_before = list(old.items)
    other = await new_room()

    new: Collector[str] = Collector()
    unwatch_new = backend.watch_inputs(new)
    try:
        await backend.append_input(other, msg(2))
        await new.wait_until(lambda items: other in items)
        # Watchers are told in order: `old`, were it still watching, would have `other` by now.
        assert other not in old.items
        assert old.items == seen_before
    finally:
        unwatch_new()


@LONG_WAITS
async def test_a_draining_reader_gets_each_input_then_the_deletion(
    backend: Backend, room: str, timeout_s: float | None
) -> None:
    # Consecutive reads from where the last one ended: the Redis backend's one-command path.
    assert await backend.read_inputs(room, 0, 10, WAIT_S) == [(1, create_input())]
    offset = await backend.append_input(room, msg(1))
    assert await backend.read_inputs(room, 1, 10, WAIT_S) == [(offset, msg(1))]
    later = await backend.append_input(room, msg(2))
    assert await backend.read_inputs(room, offset, 10, 0) == [(later, msg(2))]
    waiting = asyncio.create_task(backend.read_inputs(room, later, 10, timeout_s))
    await asyncio.sleep(0)  # let the reader start waiting (a yield, not a wait for something)

    await backend.delete_room(room)

    with pytest.raises(RoomNotFoundError):
        async with asyncio.timeout(WAIT_S):
            await waiting


async def test_a_draining_read_of_a_deleted_room_raises(backend: Backend, room: str) -> None:
    assert await backend.read_inputs(room, 0, 10, WAIT_S) == [(1, create_input())]
    await backend.delete_room(room)

    with pytest.raises(RoomNotFoundError):
        async with asyncio.timeout(WAIT_S):
            await backend.read_inputs(room, 1, 10, WAIT_S)
