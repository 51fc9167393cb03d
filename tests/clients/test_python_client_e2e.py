"""The Python client against a real roomwire server on a free 127.0.0.1 port (embedded backend)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from roomwire import App, GatewaySettings, Player, RejectedError
from roomwire import Room as ServerRoom
from roomwire.backends import backend_from_url
from roomwire.testing import serve_app
from roomwire_client import (
    Client,
    ConnectionLostError,
    Event,
    InvalidMessageError,
    RoomFullError,
    RoomNotFoundError,
    UnauthorizedError,
    UnknownTypeError,
)
from roomwire_client import RejectedError as ClientRejectedError

SECRET = "e2e-test-secret-0123456789abcdefghij"


class Move(msgspec.Struct):
    x: int


def announce_ping(room: ServerRoom) -> None:
    """Timer callback (module level: timers are stored by import path)."""
    room.broadcast("timer", n=1)


def make_app(settings: GatewaySettings | None = None) -> App:
    app = App("e2e", secret=SECRET, settings=settings)
    arena = app.room("arena", max_players=4)
    duel = app.room("duel", max_players=1)

    @arena.message("move")
    def move(room: ServerRoom, player: Player, msg: Move) -> None:
        if msg.x < 0:
            raise RejectedError("x must not be negative")
        room.broadcast("moved", player=player.id, x=msg.x)

    @arena.message("finish")
    def finish(room: ServerRoom, player: Player, msg: Any) -> None:
        room.broadcast("final", winner=player.id)
        room.end("game over")

    @arena.message("wait")
    def wait(room: ServerRoom, player: Player, msg: Any) -> None:
        room.after(float(msg), announce_ping)

    @duel.message("move")
    def duel_move(room: ServerRoom, player: Player, msg: Any) -> None:
        room.broadcast("moved", x=msg)

    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve_app(make_app()) as url:
        yield url


@contextlib.asynccontextmanager
async def guest(url: str | list[str], codec: str = "json", **kwargs: Any) -> AsyncIterator[Client]:
    async with Client(url, codec=codec, **kwargs) as client:  # type: ignore[arg-type]  # parametrized codec
        await client.login_guest()
        yield client


async def _seqs(room: Any, count: int, type: str = "moved") -> list[tuple[int, Any]]:
    return [((e := await room.next_event(type, timeout=10)).seq, e.data["x"]) for _ in range(count)]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_two_players_see_the_same_events_in_order(server: str, codec: str) -> None:
    async with guest(server, codec) as a, guest(server, "json") as b:
        room_a = await a.join_or_create("arena")
        room_b = await b.join(room_a.id)
        assert room_a.player != room_b.player
        ids = [await room_a.request("move", {"x": i}) for i in range(5)]
        assert ids == [1, 2, 3, 4, 5]
        seen_a, seen_b = await _seqs(room_a, 5), await _seqs(room_b, 5)
        assert seen_a == seen_b
        assert [x for _, x in seen_a] == [0, 1, 2, 3, 4]
        assert [s for s, _ in seen_a] == sorted(s for s, _ in seen_a)


async def test_refusals_raise_typed_errors(server: str) -> None:
    async with guest(server) as client:
        room = await client.create("arena")
        with pytest.raises(ClientRejectedError, match="negative"):
            await room.request("move", {"x": -1})
        with pytest.raises(InvalidMessageError):
            await room.request("move", {"y": 1})
        with pytest.raises(UnknownTypeError):
            await room.request("fly", {})
        assert await room.request("move", {"x": 1}) == 4  # refused ids stay used
        with pytest.raises(RoomNotFoundError):
            await client.join("no-such-room")


async def test_lobby_needs_a_token_and_a_full_room_is_refused(server: str) -> None:
    async with Client(server) as anonymous:
        with pytest.raises(UnauthorizedError):
            await anonymous.create("arena")
    async with guest(server) as a, guest(server) as b:
        duel = await a.create("duel")
        with pytest.raises(RoomFullError):
            await b.join(duel.id)


async def test_private_rooms_are_not_listed(server: str) -> None:
    async with guest(server) as client:
        public = await client.create("arena", meta={"map": "dunes"})
        private = await client.create("arena", private=True)
        listed = {r.id for r in await client.list_rooms("arena")}
        assert public.id in listed
        assert private.id not in listed
        assert [r.id for r in await client.list_rooms("arena", meta={"map": "dunes"})] == [public.id]


async def test_room_end_ends_events_for_every_player(server: str) -> None:
    async with guest(server) as a, guest(server) as b:
        room_a = await a.join_or_create("arena")
        room_b = await b.join(room_a.id)
        await room_a.request("finish")
        types_b = [e.type async for e in room_b.events()]
        assert types_b == ["final"]
        assert (room_b.left_reason, room_b.left_detail) == ("ended", "game over")
        await asyncio.wait_for(room_a.next_event("final"), 10)
        assert room_a.id not in a.rooms


async def test_leave_then_join_again(server: str) -> None:
    async with guest(server) as a, guest(server) as b:
        room_a = await a.join_or_create("arena")
        room_b = await b.join(room_a.id)
        await room_b.leave()
        assert (room_b.state, room_b.left_reason) == ("left", "left")
        again = await b.join(room_a.id)
        await room_a.request("move", {"x": 7})
        assert (await again.next_event("moved", timeout=10)).data["x"] == 7


async def test_a_dropped_connection_resumes_with_every_event_once_and_resends_messages(server: str) -> None:
    async with guest(server) as a, guest(server) as b:
        room_a = await a.join_or_create("arena")
        room_b = await b.join(room_a.id)
        await room_a.request("move", {"x": 0})
        assert (await room_a.next_event("moved")).data["x"] == 0
        assert (await room_b.next_event("moved")).data["x"] == 0

        b.connection.abort()
        pending = await room_b.send("move", {"x": 100})  # queued while the connection is down
        for i in range(1, 6):
            await room_a.request("move", {"x": i})
        await room_b.request("move", {"x": 101}, timeout=10)  # after the rejoin and the resend

        xs_a = [x for _, x in await _seqs(room_a, 7)]
        xs_b = [x for _, x in await _seqs(room_b, 7)]
        assert xs_b == xs_a
        assert sorted(xs_b) == [1, 2, 3, 4, 5, 100, 101]
        assert pending == 1  # b's first message in this room
        assert b.connection.connects == 2
        assert room_b.connected
        assert room_b.pending == 0


async def test_heartbeat_keeps_an_idle_connection_open() -> None:
    async with serve_app(make_app(GatewaySettings(heartbeat_s=0.2))) as url, guest(url) as client:
        room = await client.create("arena")
        assert client.connection.welcome is not None
        assert client.connection.welcome.heartbeat_s == 0.2
        await room.request("wait", 1.0)  # a room timer fires in 1 s: 5 heartbeat periods of idling
        event: Event = await room.next_event("timer", timeout=10)
        assert event.data == {"n": 1}
        assert client.connection.connects == 1


async def test_fails_over_to_another_gateway_and_resumes() -> None:
    backend = backend_from_url("memory://")
    await backend.open()
    try:
        first, second = make_app(), make_app()
        first.build_gateway(backend, run_worker=False, manage_backend=False)
        second.build_gateway(backend, manage_backend=False)
        async with contextlib.AsyncExitStack() as stack:
            url_1 = await stack.enter_async_context(serve_app(first))
            async with serve_app(second) as url_2, guest([url_1, url_2]) as a, guest(url_2) as b:
                room_a = await a.join_or_create("arena")
                room_b = await b.join(room_a.id)
                await room_a.request("move", {"x": 1})
                await stack.aclose()  # gateway 1 shuts down: close 1001, then nothing listens
                await room_b.request("move", {"x": 2})
                await room_a.request("move", {"x": 3}, timeout=15)
                assert [x for _, x in await _seqs(room_a, 3)] == [1, 2, 3]
                assert a.connection.url.startswith(url_2.replace("http", "ws"))
                assert a.connection.connects == 2
    finally:
        await backend.aclose()


async def test_no_server_reachable_raises_connection_lost() -> None:
    async with serve_app(make_app()) as url:
        pass  # the port is free again once the server stopped
    async with Client(url, reconnect_timeout_s=0.5) as client:
        with pytest.raises(ConnectionLostError):
            await client.login_guest()


async def test_rooms_fail_with_connection_lost_when_no_server_comes_back() -> None:
    async with serve_app(make_app()) as url:
        client = Client(url, reconnect_timeout_s=0.5)
        await client.login_guest()
        room = await client.create("arena")
        waiter = asyncio.create_task(room.next_event(timeout=30))
    try:
        # The server stopped (close 1001); reconnects are refused until the window runs out.
        with pytest.raises(ConnectionLostError) as info:
            await waiter
        assert "no server reachable" in str(info.value)
        assert room.state == "left"
        assert room.id not in client.rooms
    finally:
        await client.aclose()
