"""Conformance: seat reservations below max_players."""

from __future__ import annotations

import pytest
from conformance_kit import NewRoom, eventually, joined, step

from roomwire.backends import Backend
from roomwire.backends.records import Receipt
from roomwire.errors import RoomNotFoundError


async def test_seat_reservations_respect_max_players(backend: Backend, new_room: NewRoom) -> None:
    rid = await new_room(max_players=2)
    assert await backend.reserve_seat(rid, "a", 30)
    assert await backend.reserve_seat(rid, "b", 30)
    assert not await backend.reserve_seat(rid, "c", 30)
    got = await backend.get_room(rid)
    assert got is not None and got.reserved == 2


async def test_holding_a_seat_gets_it_again_without_a_second_seat(
    backend: Backend, new_room: NewRoom
) -> None:
    rid = await new_room(max_players=2)
    assert await backend.reserve_seat(rid, "a", 30)
    assert await backend.reserve_seat(rid, "a", 30)
    got = await backend.get_room(rid)
    assert got is not None and got.reserved == 1
    assert await backend.reserve_seat(rid, "b", 30)
    assert not await backend.reserve_seat(rid, "c", 30)
    assert await backend.reserve_seat(rid, "a", 30)


async def test_committed_players_count_against_max_players(backend: Backend, new_room: NewRoom) -> None:
    rid = await new_room(max_players=3)
    epoch = await backend.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await backend.commit(rid, epoch, step(1, players=2), history=10)
    got = await backend.get_room(rid)
    assert got is not None and got.players == 2

    assert await backend.reserve_seat(rid, "a", 30)
    assert not await backend.reserve_seat(rid, "b", 30)

    await backend.commit(rid, epoch, step(1), history=10)  # players None: unchanged
    assert not await backend.reserve_seat(rid, "b", 30)
    await backend.commit(rid, epoch, step(1, players=0), history=10)
    assert await backend.reserve_seat(rid, "b", 30)


async def test_joined_receipt_releases_the_reservation(backend: Backend, new_room: NewRoom) -> None:
    rid = await new_room(max_players=2)
    assert await backend.reserve_seat(rid, "a", 30)
    epoch = await backend.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await backend.commit(rid, epoch, step(1, receipts=(joined("a"),), players=1), history=10)

    got = await backend.get_room(rid)
    assert got is not None and (got.players, got.reserved) == (1, 0)
    assert await backend.reserve_seat(rid, "b", 30)  # a's reservation no longer counts
    assert not await backend.reserve_seat(rid, "c", 30)


async def test_seated_player_always_gets_a_seat(backend: Backend, new_room: NewRoom) -> None:
    rid = await new_room(max_players=1)
    assert await backend.reserve_seat(rid, "a", 30)
    epoch = await backend.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await backend.commit(rid, epoch, step(1, receipts=(joined("a"),), players=1), history=10)

    assert not await backend.reserve_seat(rid, "b", 30)
    assert await backend.reserve_seat(rid, "a", 30)  # e.g. reconnecting through the lobby

    removed = Receipt(player="a", kind="removed")
    await backend.commit(rid, epoch, step(1, receipts=(removed,), players=1), history=10)
    assert not await backend.reserve_seat(rid, "a", 30)  # no longer seated, and the room is full


async def test_reservations_expire_after_ttl(backend: Backend, new_room: NewRoom) -> None:
    rid = await new_room(max_players=1)
    assert await backend.reserve_seat(rid, "a", 0.2)
    assert not await backend.reserve_seat(rid, "b", 30)

    async def b_gets_the_seat() -> bool:
        return await backend.reserve_seat(rid, "b", 30)

    await eventually(b_gets_the_seat)  # expiry is time-based: poll until the ttl has passed
    got = await backend.get_room(rid)
    assert got is not None and got.reserved == 1


async def test_reserve_seat_in_unknown_room_raises(backend: Backend) -> None:
    with pytest.raises(RoomNotFoundError):
        await backend.reserve_seat("no-such-room", "a", 30)
