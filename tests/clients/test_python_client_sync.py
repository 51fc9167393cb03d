"""The Python client mirrors a synced room (issue #12 part 3) against a real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomwire import App, Player
from roomwire import Room as ServerRoom
from roomwire.testing import serve_app
from roomwire_client import Change, Client, HistoryGoneError, Room

SECRET = "sync-client-test-secret-0123456789abcdef"
PLAYERS = 8
MOVES = 6


def make_app() -> App:
    app = App("sync-e2e", secret=SECRET)
    arena = app.room("arena", max_players=PLAYERS, rate_limit=None)

    @arena.on_create
    def create(room: ServerRoom, options: dict[str, Any]) -> None:
        room.state.update({"players": {}, "log": []})

    @arena.on_join
    def join(room: ServerRoom, player: Player) -> None:
        room.state["players"][player.id] = {"pos": (0, 0), "score": 0, "notes": []}

    @arena.on_leave
    def leave(room: ServerRoom, player: Player, reason: str) -> None:
        del room.state["players"][player.id]

    @arena.message("move")
    def move(room: ServerRoom, player: Player, msg: Any) -> None:
        me = room.state["players"][player.id]
        me["pos"] = (msg, -msg)
        me["score"] += 1
        me["notes"].append(f"secret note {msg}")
        room.state["log"] = [*room.state["log"][-3:], player.id]

    @arena.message("look")
    def look(room: ServerRoom, player: Player, msg: Any) -> None:
        room.send(player, "view", view(room, player))

    tiny = app.room("tiny", sync=True, history=4, rate_limit=None)

    @tiny.on_create
    def create_tiny(room: ServerRoom, options: dict[str, Any]) -> None:
        room.state["count"] = 0

    @tiny.message("bump")
    def bump(room: ServerRoom, player: Player, msg: Any) -> None:
        room.state["count"] += 1

    @arena.view
    def view(room: ServerRoom, player: Player) -> Any:
        # Everyone sees positions and scores; only you see your notes.
        return {
            "log": room.state["log"],
            "players": {
                pid: p if pid == player.id else {"pos": p["pos"], "score": p["score"]}
                for pid, p in room.state["players"].items()
            },
        }

    app.relay("chat", max_players=3, host=True)
    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve_app(make_app()) as url:
        yield url


async def server_view(room: Room) -> Any:
    """The server's view for this player, once every earlier event reached the mirror."""
    await room.request("look")
    return (await room.next_event("view")).data


async def test_eight_clients_with_concurrent_writers_converge_and_a_resumed_one_too(server: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(server)) for _ in range(PLAYERS)]
        for client in clients:
            await client.login_guest()
        first = await clients[0].create("arena")
        rooms = [first] + [await c.join(first.id) for c in clients[1:]]
        added: list[Change] = []
        first.on_change(("players", "*"), added.append)

        async def play(room: Room, base: int) -> None:
            for i in range(MOVES):
                await room.request("move", base + i)

        clients[3].connection.abort()  # drops while the others write; resumes and resends
        await asyncio.gather(*(play(room, 100 * n) for n, room in enumerate(rooms)))

        for n, room in enumerate(rooms):
            view = await server_view(room)
            assert room.mirror.ready and room.synced == view, f"player {n}"
            me = view["players"][room.player]
            assert me["score"] == MOVES and len(me["notes"]) == MOVES
            others = [p for pid, p in view["players"].items() if pid != room.player]
            assert len(others) == PLAYERS - 1 and all("notes" not in p for p in others)
        assert clients[3].connection.connects == 2
        assert {c.path[1] for c in added} == {room.player for room in rooms}  # every player seen

        # A player leaving is a removal in the others' mirrors, and in their presence.
        added.clear()
        presence: list[tuple[str, str]] = []
        first.on_presence(lambda player, status: presence.append((player, status)))
        await rooms[7].leave()
        await server_view(first)
        assert Change(("players", rooms[7].player), None, removed=True) in added
        assert presence == [(rooms[7].player, "left")]
        assert first.presence == {room.player: "connected" for room in rooms[:7]}


async def test_sync_events_update_the_mirror_and_stay_out_of_events(server: str) -> None:
    async with Client(server) as client:
        await client.login_guest()
        room = await client.create("arena")
        await room.request("move", 5)
        view = await server_view(room)
        assert room.synced == view and room.synced["players"][room.player]["pos"] == [5, -5]
        assert room.mirror.seq > 0


async def test_a_resume_past_the_history_gets_a_whole_state_and_the_mirror_is_right(server: str) -> None:
    async with Client(server) as a, Client(server, reconnect_timeout_s=10) as b:
        await a.login_guest()
        await b.login_guest()
        room_a = await a.create("tiny")
        room_b = await b.join(room_a.id)
        await room_b.request("bump")
        assert room_b.synced == {"count": 1}
        b.connection.abort()
        for _ in range(10):  # far more events than the room keeps: b's resume cannot replay them
            await room_a.request("bump")
        await room_b.request("bump", timeout=10)  # after the rejoin
        assert room_b.mirror.ready and room_b.synced == {"count": 12}
        with pytest.raises(HistoryGoneError):  # it really resumed past the history
            async with asyncio.timeout(5):
                async for _ in room_b.events():
                    pass
        assert b.connection.connects == 2


async def test_a_relay_rooms_host_is_tracked_and_host_events_stay_out_of_events(server: str) -> None:
    async with Client(server) as a, Client(server) as b:
        await a.login_guest()
        await b.login_guest()
        room_a = await a.create("chat")
        room_b = await b.join(room_a.id)
        hosts: list[str | None] = []
        room_b.on_host(hosts.append)
        await room_b.request("hi", 1)
        assert (await room_b.next_event()).data == {"from": room_b.player, "data": 1}  # no @host
        assert room_a.host == room_b.host == room_a.player

        await room_a.leave()  # bob becomes host: a `@host` event, then bob's next message
        await room_b.request("hi", 2)
        assert (await room_b.next_event()).data == {"from": room_b.player, "data": 2}
        assert room_b.host == room_b.player and hosts[-1] == room_b.player
