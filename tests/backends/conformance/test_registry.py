"""Conformance: the room registry (create, get, list, delete)."""

from __future__ import annotations

import pytest
from conformance_kit import NewRoom, create_input, msg, record, room_id, step

from roomwire.backends import Backend
from roomwire.errors import RoomNotFoundError, SetupError, StaleLeaseError


async def test_backend_implements_the_protocol(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name


async def test_created_room_is_found_with_its_record(backend: Backend) -> None:
    rid = room_id()
    rec = record(rid, type="arena", max_players=6, meta={"mode": "ctf"}, private=True, code_version="v7")
    await backend.create_room(rec, create_input(map="dust"))

    got = await backend.get_room(rid)
    assert got is not None
    assert (got.id, got.type, got.max_players, got.meta, got.private, got.created_at, got.code_version) == (
        rid,
        "arena",
        6,
        {"mode": "ctf"},
        True,
        1000.0,
        "v7",
    )
    assert (got.players, got.reserved) == (0, 0)


async def test_unknown_room_is_none(backend: Backend) -> None:
    assert await backend.get_room("no-such-room") is None


async def test_duplicate_room_id_is_refused(backend: Backend, room: str) -> None:
    with pytest.raises(SetupError):
        await backend.create_room(record(room), create_input())


async def test_list_rooms_is_oldest_first_and_filters_by_type(backend: Backend, new_room: NewRoom) -> None:
    a = await new_room(type="arena")
    b = await new_room(type="lobby")
    c = await new_room(type="arena")

    assert [r.id for r in await backend.list_rooms()] == [a, b, c]
    assert [r.id for r in await backend.list_rooms("arena")] == [a, c]
    assert [r.id for r in await backend.list_rooms("lobby")] == [b]
    assert await backend.list_rooms("none") == []


async def test_delete_room_removes_everything(backend: Backend, room: str) -> None:
    await backend.append_input(room, msg(1))
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.commit(room, epoch, step(1), history=10)

    await backend.delete_room(room)

    assert await backend.get_room(room) is None
    assert room not in [r.id for r in await backend.list_rooms()]
    with pytest.raises(RoomNotFoundError):
        await backend.append_input(room, msg(2))
    with pytest.raises(RoomNotFoundError):
        await backend.read_events(room, 0)
    with pytest.raises(RoomNotFoundError):
        await backend.reserve_seat(room, "p1", 30)
    # Promise 4: the lease went with the room, so its holder cannot write any more.
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, epoch, step(2), history=10)
    with pytest.raises(StaleLeaseError):
        await backend.renew_lease(room, "w1", epoch, 30)


async def test_delete_unknown_room_is_a_noop(backend: Backend, room: str) -> None:
    await backend.delete_room("no-such-room")
    await backend.delete_room(room)
    await backend.delete_room(room)
    assert await backend.get_room(room) is None


async def test_recreated_room_starts_fresh(backend: Backend, room: str) -> None:
    await backend.append_input(room, msg(1))
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    await backend.commit(room, epoch, step(2), history=10)
    await backend.delete_room(room)

    await backend.create_room(record(room, max_players=2), create_input(again=True))

    assert await backend.load(room) is None
    assert await backend.read_events(room, 0) == []
    assert await backend.read_inputs(room, 0, 10, 0) == [(1, create_input(again=True))]
    got = await backend.get_room(room)
    assert got is not None and got.max_players == 2
