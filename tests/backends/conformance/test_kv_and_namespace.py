"""Conformance: lobby key-value data, namespaces and drop_all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conformance_kit import NewRoom, create_input, eventually, hold_for, new_namespace, record, room_id

from roomwire.backends import Backend, backend_from_url


async def test_kv_set_get_delete(backend: Backend) -> None:
    assert await backend.kv_get("k") is None
    await backend.kv_set("k", b"v1")
    assert await backend.kv_get("k") == b"v1"
    await backend.kv_set("k", b"\x00\xffbinary")
    assert await backend.kv_get("k") == b"\x00\xffbinary"
    await backend.kv_delete("k")
    assert await backend.kv_get("k") is None
    await backend.kv_delete("k")  # absent: a no-op


async def test_kv_entry_expires_after_ttl(backend: Backend) -> None:
    await backend.kv_set("short", b"v", ttl_s=0.2)
    await backend.kv_set("long", b"v", ttl_s=30)
    assert await backend.kv_get("short") == b"v"

    async def short_is_gone() -> bool:
        return await backend.kv_get("short") is None

    await eventually(short_is_gone)  # expiry is time-based: poll until the ttl has passed
    assert await backend.kv_get("long") == b"v"


async def test_kv_set_without_ttl_replaces_an_earlier_ttl(backend: Backend) -> None:
    await backend.kv_set("k", b"v1", ttl_s=0.2)
    await backend.kv_set("k", b"v2")

    async def still_there() -> bool:
        return await backend.kv_get("k") == b"v2"

    await hold_for(0.4, still_there)


@pytest.fixture
async def neighbour(engine_url: str) -> AsyncIterator[Backend]:
    """A second backend on the same engine, in another namespace."""
    b = backend_from_url(engine_url, namespace=new_namespace())
    await b.open()
    try:
        yield b
    finally:
        await b.drop_all()
        await b.aclose()


async def test_namespaces_do_not_see_each_other(backend: Backend, neighbour: Backend, room: str) -> None:
    await backend.kv_set("k", b"mine")
    assert await neighbour.get_room(room) is None
    assert await neighbour.list_rooms() == []
    assert await neighbour.kv_get("k") is None

    await neighbour.create_room(record(room), create_input())  # same id, other namespace
    assert len(await backend.list_rooms()) == 1


async def test_drop_all_deletes_everything_of_the_namespace(
    backend: Backend, neighbour: Backend, new_room: NewRoom
) -> None:
    rooms = [await new_room(), await new_room(type="lobby")]
    epoch = await backend.acquire_lease(rooms[0], "w1", 30)
    assert epoch is not None
    await backend.kv_set("k", b"v")
    await backend.kv_set("t", b"v", ttl_s=30)
    other = room_id()
    await neighbour.create_room(record(other), create_input())
    await neighbour.kv_set("k", b"theirs")

    await backend.drop_all()

    assert await backend.list_rooms() == []
    assert [await backend.get_room(r) for r in rooms] == [None, None]
    assert await backend.kv_get("k") is None
    assert await backend.kv_get("t") is None
    # The neighbour's namespace is untouched.
    assert [r.id for r in await neighbour.list_rooms()] == [other]
    assert await neighbour.kv_get("k") == b"theirs"
    # The backend stays usable.
    again = await new_room()
    assert [r.id for r in await backend.list_rooms()] == [again]
