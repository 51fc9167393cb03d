"""Conformance: which rooms need a worker, and hibernation fenced by the lease epoch.

Scheduling follows pending input (issue #10 item 4): a hibernating room with input appended above
its committed offset is listed by `rooms_to_run` whether or not anyone was woken for it.
"""

from __future__ import annotations

from conformance_kit import Collector, NewRoom, eventually, msg, step

from roomwire.backends import Backend


async def asleep(backend: Backend, room: str) -> int:
    """Run the room's first step under a lease, then put it to sleep; returns the epoch used."""
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.commit(room, epoch, step(1), history=10)
    assert await backend.hibernate(room, "w1", epoch)
    return epoch


async def test_a_new_room_needs_a_worker_until_leased(backend: Backend, new_room: NewRoom) -> None:
    a, b = await new_room(), await new_room()
    assert await backend.rooms_to_run() == [a, b]
    assert await backend.acquire_lease(a, "w1", 30) is not None
    assert await backend.rooms_to_run() == [b]


async def test_hibernate_marks_the_room_and_releases_its_lease(backend: Backend, room: str) -> None:
    epoch = await asleep(backend, room)
    record = await backend.get_room(room)
    assert record is not None and record.hibernating
    assert [r.hibernating for r in await backend.list_rooms()] == [True]
    assert await backend.rooms_to_run() == []  # asleep, nothing pending: nobody needs to run it

    taken = await backend.acquire_lease(room, "w2", 30)  # the lease was released with the mark
    assert taken is not None and taken > epoch
    record = await backend.get_room(room)
    assert record is not None and not record.hibernating  # a claimed room is awake


async def test_a_sleeping_room_with_pending_input_needs_a_worker(backend: Backend, room: str) -> None:
    await asleep(backend, room)
    await backend.append_input(room, msg(1))
    # Whether or not a watcher was woken: the input itself makes the room due.
    assert await backend.rooms_to_run() == [room]
    epoch = await backend.acquire_lease(room, "w2", 30)
    assert epoch is not None
    assert await backend.rooms_to_run() == []
    await backend.commit(room, epoch, step(2), history=10)
    assert await backend.hibernate(room, "w2", epoch)
    assert await backend.rooms_to_run() == []


async def test_input_pending_when_a_room_goes_to_sleep_wakes_watchers(backend: Backend, room: str) -> None:
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.commit(room, epoch, step(1), history=10)
    woken: Collector[str] = Collector()
    unwatch = backend.watch_inputs(woken)
    try:
        await backend.append_input(room, msg(1))  # under a live lease: the holder reads it
        assert await backend.hibernate(room, "w1", epoch)
        await woken.wait_until(lambda rooms: room in rooms)
    finally:
        unwatch()
    assert await backend.rooms_to_run() == [room]


async def test_a_stale_epoch_cannot_put_the_room_to_sleep(backend: Backend, room: str) -> None:
    stale = await backend.acquire_lease(room, "w1", 30)
    current = await backend.acquire_lease(room, "w1", 30)  # the old epoch is fenced off
    assert stale is not None and current is not None

    assert not await backend.hibernate(room, "w1", stale)
    assert not await backend.hibernate(room, "w2", current)  # right epoch, wrong owner
    record = await backend.get_room(room)
    assert record is not None and not record.hibernating
    assert await backend.acquire_lease(room, "w2", 30) is None  # the lease is still held
    await backend.commit(room, current, step(1), history=10)


async def test_hibernate_of_an_unknown_room_is_false(backend: Backend) -> None:
    assert not await backend.hibernate("no-such-room", "w1", 1)


async def test_a_room_whose_lease_expired_needs_a_worker(backend: Backend, room: str) -> None:
    assert await backend.acquire_lease(room, "w1", 0.2) is not None
    assert await backend.rooms_to_run() == []

    async def due() -> bool:
        return await backend.rooms_to_run() == [room]

    await eventually(due)  # expiry is time-based: poll until the ttl has passed


async def test_an_ended_room_is_not_listed(backend: Backend, new_room: NewRoom) -> None:
    a, b = await new_room(), await new_room()
    await backend.delete_room(a)
    assert await backend.rooms_to_run() == [b]
