"""Connection-level policy: Origin allow-list, handshake and heartbeat timeouts, rate limits, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from gateway_harness import FRAME_TIMEOUT_S, Server, make_app

from roomwire import App, GatewaySettings
from roomwire.testing import serve_app


async def _serve(app: App) -> AsyncIterator[Server]:
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT_S) as http:
        srv = Server(url, app, http)
        yield srv
        for client in srv.clients:
            await client.ws.close()


@pytest.fixture
async def strict_server() -> AsyncIterator[Server]:
    settings = GatewaySettings(
        allowed_origins=("https://game.example",), heartbeat_s=0.5, handshake_timeout_s=0.5
    )
    async for srv in _serve(make_app(settings)):
        yield srv


@pytest.fixture
async def limited_server() -> AsyncIterator[Server]:
    app = App("limited")
    room = app.room("arena", rate_limit=5)

    @room.message("tap")
    def tap(room: object, player: object, msg: object) -> None:
        pass

    async for srv in _serve(app):
        yield srv


async def test_origin_outside_the_allow_list_is_refused(strict_server: Server) -> None:
    url = strict_server.url.replace("http", "ws", 1) + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, origin=websockets.Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    ok = await websockets.connect(url, origin=websockets.Origin("https://game.example"))
    await ok.close()


async def test_no_hello_in_time_closes_the_connection(strict_server: Server) -> None:
    url = strict_server.url.replace("http", "ws", 1) + "/ws"
    ws = await websockets.connect(url, origin=websockets.Origin("https://game.example"))
    async with asyncio.timeout(10):
        await ws.wait_closed()
    assert ws.close_code == 4005


async def test_silent_client_is_closed_after_two_heartbeats(strict_server: Server) -> None:
    url = strict_server.url.replace("http", "ws", 1) + "/ws"
    ws = await websockets.connect(url, origin=websockets.Origin("https://game.example"))
    await ws.send('{"t":"hello","v":1}')
    welcome = await ws.recv()
    assert '"heartbeat_s":0.5' in str(welcome)
    for _ in range(4):  # a client that pings in time stays connected
        await asyncio.sleep(0.3)  # the test plays a client keeping its heartbeat cadence
        await ws.send('{"t":"ping","id":1}')
        assert "pong" in str(await ws.recv())
    async with asyncio.timeout(10):
        await ws.wait_closed()
    assert ws.close_code == 4003


async def test_rate_limit_rejects_then_flooding_closes(limited_server: Server) -> None:
    client, seat = await limited_server.player(type="arena", create=True)
    for _ in range(10):  # the burst: two seconds' worth
        await client.msg(seat.room, "tap")
    codes = []
    for _ in range(5):
        msg_id = await client.msg(seat.room, "tap")
        codes.append((await client.recv_until("reject", id=msg_id))["code"])
    assert codes == ["rate_limited"] * 5
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(10):
            while True:  # keep flooding until the server gives up on this client
                await client.msg(seat.room, "tap", id=None)
                await asyncio.sleep(0)
    assert client.ws.close_code == 4004


async def test_shutdown_closes_clients_with_going_away() -> None:
    app = make_app()
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT_S) as http:
        srv = Server(url, app, http)
        client, _ = await srv.player(create=True)
        gateway = app.gateway
        assert gateway is not None
        await gateway.aclose()
        async with asyncio.timeout(10):
            await client.ws.wait_closed()
        assert client.ws.close_code == 1001
