"""Promise 7 at the WebSocket edge, over real sockets: invalid UTF-8, Origin rule, join/leave floods,
connections per player and per address."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import websockets
from gateway_harness import FRAME_TIMEOUT_S, Server, make_app, serving

from roomwire import GatewaySettings
from roomwire.testing import serve_app
from roomwire_client import Client, ClientError


async def test_invalid_utf8_text_frames_close_1007_with_one_log_line_each(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws_url = server.url.replace("http", "ws", 1) + "/ws"
    for hello_first in (True, False):  # the receive fast path, and the queued path
        ws = await websockets.connect(ws_url, open_timeout=FRAME_TIMEOUT_S)
        if hello_first:
            await ws.send('{"t":"hello","v":1}')
            await ws.recv()
        await ws.send(b'{"t":"ping","id":1,"x":"\xff\xfe"}', text=True)
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await ws.wait_closed()
        assert ws.close_code == 1007 and ws.close_reason == "invalid UTF-8 in a text frame"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    lines = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(lines) == 2 and all("\n" not in r.getMessage() for r in lines)
    # The server still serves everybody else.
    client, _ = await server.player(create=True)
    await client.send({"t": "ping", "id": 7})
    assert (await client.recv_until("pong"))["id"] == 7


@pytest.fixture
async def limited() -> AsyncIterator[Server]:
    """The test game with an Origin allow-list and small per-connection and per-player bounds."""
    settings = GatewaySettings(
        allowed_origins=("https://game.example",),
        allow_missing_origin=True,
        join_rate_per_s=5,
        max_connections_per_player=2,
        max_connections_per_ip=6,
    )
    app = make_app(settings)
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def test_a_burst_of_leaves_and_joins_is_rate_limited_then_closed_4004(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    again = await server.seat(room=seat.room, token=seat.token)
    codes: list[str] = []
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(20):
            for _ in range(200):  # 200 leave+join pairs in one burst; the default allows 20
                await alice.send({"t": "leave", "room": seat.room})
                await alice.send({"t": "join", "room": seat.room, "seat": again.seat})
            while True:
                frame = await alice.recv()
                if frame["t"] == "error":
                    codes.append(frame["code"])
    assert alice.ws.close_code == 4004
    assert "rate_limited" in codes
    # Far fewer than 200 joins reached the room: bob saw about the burst's worth of them.
    await bob.send({"t": "ping", "id": 1})
    await bob.recv_until("pong")
    assert len(bob.events(seat.room, "joined")) <= 25


async def test_connections_per_player_are_bounded(limited: Server) -> None:
    token = await limited.guest()
    rooms = [await limited.seat(create=True, token=token) for _ in range(3)]
    for seat in rooms[:2]:  # one player in two rooms on two connections: the limit here
        await limited.player(seat)
    third = await limited.connect()
    refused = await third.join(rooms[2])
    assert refused["t"] == "error" and refused["code"] == "rate_limited"
    assert "2 connections" in refused["message"]
    await limited.clients[0].aclose()  # one fewer: the player may connect again
    async with asyncio.timeout(10):
        while True:
            answer = await third.join(await limited.seat(room=rooms[2].room, token=token))
            if answer.get("code") != "rate_limited":
                break
            await asyncio.sleep(0.1)  # until the server has seen the close
    assert answer["t"] == "joined", answer


async def test_connections_per_address_are_bounded(limited: Server) -> None:
    clients = [await limited.connect() for _ in range(6)]
    with pytest.raises(websockets.InvalidStatus) as refused:
        await limited.connect()
    assert refused.value.response.status_code == 429
    assert b"rate_limited" in refused.value.response.body
    await clients[0].aclose()
    async with asyncio.timeout(10):
        while True:
            try:
                await limited.connect()
                break
            except websockets.InvalidStatus:
                await asyncio.sleep(0.1)  # until the server has seen the close


async def test_origin_rule_with_and_without_allow_missing_origin(limited: Server) -> None:
    url = limited.url.replace("http", "ws", 1) + "/ws"
    # Browsers always send Origin: a foreign one is refused even when a missing one is allowed.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, origin=websockets.Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    ok = await websockets.connect(url)  # no Origin: a non-browser client, let in by the setting
    await ok.close()
    strict = make_app(GatewaySettings(allowed_origins=("https://game.example",)))
    async with serve_app(strict) as strict_url:
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(strict_url.replace("http", "ws", 1) + "/ws")  # not allowed by default


async def test_the_python_sdk_can_send_an_origin(limited: Server) -> None:
    strict = make_app(GatewaySettings(allowed_origins=("https://game.example",)))
    async with serve_app(strict) as url:
        async with Client(url, reconnect=False) as refused:
            await refused.login_guest()
            with pytest.raises(ClientError):
                await refused.join_or_create("arena")
        async with Client(url, origin="https://game.example") as client:
            await client.login_guest()
            room = await client.join_or_create("arena")
            await room.send("move", {"n": 1})


async def test_a_replaced_connection_no_longer_counts_for_its_player(limited: Server) -> None:
    # A client that reconnects while its old connections linger (the server has not noticed
    # them dead yet) takes their place in the room, and is not refused for their number.
    seat = await limited.seat(create=True)
    lingering = [await limited.connect() for _ in range(2)]
    for client in lingering:  # each replaces the one before in the room
        answer = await client.join(await limited.seat(room=seat.room, token=seat.token))
        assert answer["t"] == "joined"
    await lingering[0].recv_until("left", room=seat.room)  # replaced
    fresh = await limited.connect()
    answer = await fresh.join(await limited.seat(room=seat.room, token=seat.token))
    assert answer["t"] == "joined", answer
