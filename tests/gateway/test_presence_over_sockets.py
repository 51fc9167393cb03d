"""Presence over real sockets (issue #12 part 5): who is in a synced room, and counts per type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import Server, serving

from roomwire import App
from roomwire.testing import serve_app


def presence_app() -> App:
    app = App("presence-tests")
    app.room("table", sync=True, max_players=4, rate_limit=None, idle_timeout_s=60, reconnect_grace_s=30)
    app.relay("chat", max_players=4)
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = presence_app()
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def test_a_synced_room_tells_its_clients_who_is_connected_reconnecting_or_gone(server: Server) -> None:
    seat = await server.seat("table", create=True)
    ann = await server.connect()
    await ann.join(seat)
    first = await ann.recv_until("event", type="@presence")
    assert first["data"] == {seat.player: "connected"}
    bob_seat = await server.seat(room=seat.room)
    bob = await server.connect()
    joined = await bob.join(bob_seat)
    both = {seat.player: "connected", bob_seat.player: "connected"}
    assert (await ann.recv_until("event", type="@presence"))["data"] == both
    assert (await bob.recv_until("event", type="@presence"))["data"] == both

    await bob.aclose()  # dropped: the seat is kept for the grace period
    gone = await ann.recv_until("event", type="@presence")
    assert gone["data"] == {seat.player: "connected", bob_seat.player: "reconnecting"}
    bob = await server.connect()
    assert (await bob.join(joined["rejoin"], room=seat.room))["t"] == "joined"
    assert (await ann.recv_until("event", type="@presence"))["data"] == both
    await bob.send({"t": "leave", "room": seat.room})
    assert (await ann.recv_until("event", type="@presence"))["data"] == {seat.player: "connected"}


async def test_the_lobby_lists_rooms_and_players_per_room_type(server: Server) -> None:
    token = await server.guest()
    headers = {"authorization": f"Bearer {token}"}
    for room_type, count in (("table", 2), ("chat", 1)):
        seat = await server.seat(room_type, create=True)
        for _ in range(count):
            await server.player(await server.seat(room=seat.room))
    private = await server.http.post("/rooms", json={"type": "chat", "private": True}, headers=headers)
    await server.player(await server.seat(room=private.json()["room"]))

    expected: dict[str, Any] = {"table": {"rooms": 1, "players": 2}, "chat": {"rooms": 2, "players": 2}}
    async with asyncio.timeout(10):
        while True:  # the room records' counts follow the rooms' commits
            listed = (await server.http.get("/rooms", headers=headers)).json()
            if listed["types"] == expected:
                break
            await asyncio.sleep(0.05)
    assert len(listed["rooms"]) == 2  # the private room is counted, not listed
    only = (await server.http.get("/rooms", params={"type": "chat"}, headers=headers)).json()
    assert only["types"] == {"chat": expected["chat"]}
    assert await server.app.lobby.player_counts() == expected
