"""Conformance: leases and fencing (Promise 4: one writer per room)."""

from __future__ import annotations

import asyncio

import pytest
from conformance_kit import NewRoom, create_input, events, eventually, hold_for, record, step

from roomwire.backends import Backend
from roomwire.errors import RoomNotFoundError, StaleLeaseError


async def test_acquired_epochs_increase(backend: Backend, new_room: NewRoom) -> None:
    a, b = await new_room(), await new_room()
    e1 = await backend.acquire_lease(a, "w1", 30)
    e2 = await backend.acquire_lease(b, "w1", 30)
    assert e1 is not None and e2 is not None
    await backend.release_lease(a, "w1", e1)
    e3 = await backend.acquire_lease(a, "w2", 30)
    assert e3 is not None and e3 > e1


async def test_live_lease_is_not_given_to_another_owner(backend: Backend, room: str) -> None:
    assert await backend.acquire_lease(room, "w1", 30) is not None
    assert await backend.acquire_lease(room, "w2", 30) is None


async def test_reacquiring_own_live_lease_gives_a_higher_epoch_and_fences_the_old(
    backend: Backend, room: str
) -> None:
    old = await backend.acquire_lease(room, "w1", 30)
    new = await backend.acquire_lease(room, "w1", 30)
    assert old is not None and new is not None and new > old

    with pytest.raises(StaleLeaseError):
        await backend.commit(room, old, step(1), history=10)
    await backend.commit(room, new, step(1), history=10)


async def test_stale_epoch_cannot_commit(backend: Backend, room: str) -> None:
    stalled = await backend.acquire_lease(room, "w1", 30)
    assert stalled is not None
    await backend.commit(room, stalled, step(1, events(1, 1)), history=10)
    await backend.release_lease(room, "w1", stalled)  # as if w1 lost it: w2 takes over
    current = await backend.acquire_lease(room, "w2", 30)
    assert current is not None and current > stalled

    # Promise 4: the stalled worker comes back and tries to write.
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, stalled, step(1, events(2, 1), snapshot=b"stale"), history=10)
    with pytest.raises(StaleLeaseError):
        await backend.renew_lease(room, "w1", stalled, 30)

    loaded = await backend.load(room)
    assert loaded is not None and (loaded.snapshot, loaded.last_seq) == (b"state@1", 1)
    assert [e.seq for e in await backend.read_events(room, 0)] == [1]
    await backend.commit(room, current, step(1, events(2, 1)), history=10)


async def test_expired_lease_can_be_taken_by_another_owner(backend: Backend, room: str) -> None:
    first = await backend.acquire_lease(room, "w1", 0.2)
    assert first is not None
    taken: list[int] = []

    async def w2_takes_over() -> bool:
        epoch = await backend.acquire_lease(room, "w2", 30)
        if epoch is not None:
            taken.append(epoch)
        return epoch is not None

    await eventually(w2_takes_over)  # expiry is time-based: poll until the ttl has passed
    assert taken[0] > first
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, first, step(1), history=10)
    with pytest.raises(StaleLeaseError):
        await backend.renew_lease(room, "w1", first, 30)


async def test_renewed_lease_outlives_its_first_ttl(backend: Backend, room: str) -> None:
    epoch = await backend.acquire_lease(room, "w1", 0.2)
    assert epoch is not None
    await backend.renew_lease(room, "w1", epoch, 30)

    async def still_held() -> bool:
        return await backend.acquire_lease(room, "w2", 30) is None

    await hold_for(0.4, still_held)  # past the first ttl: the renewal must have extended it
    await backend.commit(room, epoch, step(1), history=10)


async def test_release_frees_the_lease_at_once(backend: Backend, room: str) -> None:
    first = await backend.acquire_lease(room, "w1", 30)
    assert first is not None
    await backend.release_lease(room, "w1", first)
    second = await backend.acquire_lease(room, "w2", 30)
    assert second is not None and second > first
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, first, step(1), history=10)


async def test_release_by_someone_else_is_a_noop(backend: Backend, room: str) -> None:
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.release_lease(room, "w2", epoch)
    await backend.release_lease(room, "w1", epoch - 1)
    await backend.release_lease("no-such-room", "w1", epoch)
    assert await backend.acquire_lease(room, "w2", 30) is None
    await backend.renew_lease(room, "w1", epoch, 30)


async def test_epochs_keep_increasing_after_delete_and_recreate(backend: Backend, room: str) -> None:
    before = await backend.acquire_lease(room, "w1", 30)
    assert before is not None
    await backend.delete_room(room)
    await backend.create_room(record(room), create_input())

    after = await backend.acquire_lease(room, "w1", 30)
    assert after is not None and after > before
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, before, step(1), history=10)


async def test_acquire_lease_of_unknown_room_raises(backend: Backend) -> None:
    with pytest.raises(RoomNotFoundError):
        await backend.acquire_lease("no-such-room", "w1", 30)


async def test_concurrent_acquisitions_leave_the_highest_epoch_current(backend: Backend, room: str) -> None:
    # Promise 4 (base.py): each acquisition's epoch is above every earlier one, so of many
    # acquisitions racing each other the one that ends up current is the one with the highest
    # epoch; every other is stale.
    epochs = await asyncio.gather(*(backend.acquire_lease(room, "w1", 30) for _ in range(40)))
    assert None not in epochs and len(set(epochs)) == len(epochs)
    highest = max(e for e in epochs if e is not None)
    for epoch in epochs:
        assert epoch is not None
        if epoch != highest:
            with pytest.raises(StaleLeaseError):
                await backend.renew_lease(room, "w1", epoch, 30)
    await backend.renew_lease(room, "w1", highest, 30)
    await backend.commit(room, highest, step(1), history=10)
    later = await backend.acquire_lease(room, "w1", 30)
    assert later is not None and later > highest
