"""An App mounted inside an existing Starlette application, next to that app's own routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from gateway_harness import FRAME_TIMEOUT_S, Server, make_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from roomwire.gateway.server import bind_socket, uvicorn_config


@pytest.fixture
async def mounted() -> AsyncIterator[Server]:
    game = make_app()

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the host app")

    host = Starlette(routes=[Route("/", home), Mount("/game", app=game)], lifespan=game.lifespan)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(host, "127.0.0.1", port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
                await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base + "/game", timeout=FRAME_TIMEOUT_S) as http:
            srv = Server(base + "/game", game, http)
            yield srv
            for client in srv.clients:
                await client.ws.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def test_mounted_app_serves_lobby_and_websocket_under_its_prefix(mounted: Server) -> None:
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(mounted.url.removesuffix("/game") + "/")).text == "the host app"
    alice, seat = await mounted.player(create=True)
    bob, _ = await mounted.player(await mounted.seat(room=seat.room))
    await alice.msg(seat.room, "move", {"n": 2})
    assert (await bob.recv_until("event", type="moved"))["data"]["total"] == 2
    assert (await mounted.http.get("/stats")).json()["rooms"] == 1
