"""Workers disconnect the players of a gateway that stopped renewing its presence (runtime.presence)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from roomwire import App, Player, Room
from roomwire.backends.base import Backend
from roomwire.backends.records import CreateInput, Input, JoinInput, RoomRecord
from roomwire.runtime.presence import gateway_key, new_gateway_id, new_session, session_gateway
from roomwire.runtime.worker import Worker

WAIT_S = 5.0

app = App("presence")
arena = app.room("arena", max_players=4, reconnect_grace_s=60)
disconnected: list[str] = []


@arena.on_disconnect
def on_disconnect(room: Room, player: Player) -> None:
    disconnected.append(player.id)


@pytest.fixture
async def worker(backend: Backend) -> AsyncIterator[Worker]:
    """A worker whose own presence checks never come: the test calls check_gateways() itself."""
    disconnected.clear()
    w = Worker(app.room_types, backend, presence_ttl_s=3600.0)
    await w.start()
    try:
        yield w
    finally:
        await w.aclose()


async def _room_with(backend: Backend, worker: Worker, sessions: dict[str, str]) -> str:
    """A running room with these players (player -> session) connected."""
    now = time.time()
    await backend.create_room(
        RoomRecord(id="room-1", type="arena", max_players=4, created_at=now), CreateInput({}, now)
    )
    for player, session in sessions.items():
        await backend.append_input("room-1", JoinInput(player, {}, session, now))
    await _until(worker, len(sessions))
    return "room-1"


async def _appended_after_joins(backend: Backend, joins: int) -> list[tuple[int, Input]]:
    # On the embedded backend an append is synchronous: what a check appended is in the log
    # before the room's executor runs again.
    return await backend.read_inputs("room-1", 1 + joins, 100, 0)


async def _until(worker: Worker, connected: int) -> None:
    # The worker's counters have no event of their own (hence the noqa): poll them, bounded.
    async with asyncio.timeout(WAIT_S):
        while worker.stats().get("room-1", {}).get("connected") != connected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_a_session_names_the_gateway_that_made_it() -> None:
    gateway_id = new_gateway_id()
    assert session_gateway(new_session(gateway_id)) == gateway_id
    assert session_gateway("join") is None  # refs from before sessions, or RoomTester's
    assert session_gateway("") is None


async def test_players_of_a_gateway_missing_twice_in_a_row_are_disconnected(
    backend: Backend, worker: Worker
) -> None:
    live, dead = new_gateway_id(), new_gateway_id()
    await backend.kv_set(gateway_key(live), b"1", ttl_s=60)
    await _room_with(backend, worker, {"alice": new_session(live), "bob": new_session(dead)})

    await worker.check_gateways()  # the first miss: maybe a gateway back from an engine outage
    assert await _appended_after_joins(backend, 2) == []

    await worker.check_gateways()
    assert [type(item).__name__ for _, item in await _appended_after_joins(backend, 2)] == ["DisconnectInput"]

    await _until(worker, 1)
    assert disconnected == ["bob"]


async def test_a_gateway_that_renews_between_two_checks_keeps_its_players(
    backend: Backend, worker: Worker
) -> None:
    late = new_gateway_id()
    await _room_with(backend, worker, {"carol": new_session(late)})

    await worker.check_gateways()
    await backend.kv_set(gateway_key(late), b"1", ttl_s=60)  # renewed after the first check
    await worker.check_gateways()
    await backend.kv_delete(gateway_key(late))
    await worker.check_gateways()  # missing again: a first miss once more, not a second

    assert await _appended_after_joins(backend, 1) == []
    assert disconnected == []
