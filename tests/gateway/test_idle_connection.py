"""What a connection keeps once it is open: no handshake headers, waiters only while someone waits,
and the plain-ASGI send path (no direct writes) still delivering every frame in order."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
import websockets
from gateway_harness import FRAME_TIMEOUT_S, RawClient, Server, make_app, serving, uvicorn_on_free_port
from websockets.datastructures import Headers

from roomwire.gateway._uvicorn_ws import WriteGate


async def test_the_server_keeps_no_copy_of_the_handshake_headers_once_accepted(server: Server) -> None:
    probe = secrets.token_hex(16)
    seat = await server.seat(create=True)
    ws = await websockets.connect(
        server.url.replace("http", "ws", 1) + "/ws",
        subprotocols=["roomwire.v1.json"],  # type: ignore[list-item]  # websockets' Subprotocol
        additional_headers={"X-Probe": probe},
        open_timeout=FRAME_TIMEOUT_S,
    )
    client = RawClient(ws, "json")
    server.clients.append(client)
    await client.hello()
    assert (await client.join(seat))["t"] == "joined"
    await client.msg(seat.room, "move", {"n": 1}, id=1)
    await client.recv_until("ack", id=1)

    gc.collect()
    objects = gc.get_objects()
    holders = [o for o in objects if isinstance(o, Headers) and probe in o.get_all("X-Probe")]
    # The client's own request (same process) shows the search finds headers that are kept.
    assert ws.request is not None and any(h is ws.request.headers for h in holders)
    server_headers = [h for h in holders if h is not ws.request.headers]
    assert server_headers == []
    # Nor the ASGI scope's copy, a list of (name, value) byte pairs.
    wanted = (b"x-probe", probe.encode())
    scope_copies = [o for o in objects if isinstance(o, list) and any(i == wanted for i in o[:64])]
    assert scope_copies == []


@asynccontextmanager
async def _served_by_stock_uvicorn() -> AsyncIterator[Server]:
    """The test game behind uvicorn's own WebSocket protocol: no direct-write extension."""
    app = make_app()
    gateway = app.build_gateway()

    def config(host: str, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            gateway, host=host, port=port, ws="websockets-sansio", lifespan="on", log_level="warning"
        )

    async with uvicorn_on_free_port(config) as port, serving(f"http://127.0.0.1:{port}", app) as srv:
        yield srv


async def test_plain_asgi_sends_deliver_every_frame_in_order() -> None:
    async with _served_by_stock_uvicorn() as server:
        alice, seat = await server.player(create=True)
        bob, _ = await server.player(await server.seat(room=seat.room))
        gateway = server.app.gateway
        assert gateway is not None
        assert all(conn.direct is None for conn in gateway._conns.values())  # the path under test
        count = 30
        for _ in range(count):
            await alice.msg(seat.room, "move", {"n": 1})
        await alice.recv_until("ack", id=count)
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while len(bob.events(seat.room, "moved")) < count:
                await bob.recv()
        for client in (alice, bob):
            totals = [e["data"]["total"] for e in client.events(seat.room, "moved")]
            assert totals == list(range(1, count + 1))
        acks = [f["id"] for f in alice.frames if f["t"] == "ack"]
        assert acks == list(range(1, count + 1))


async def test_write_gate_lets_waiters_through_only_once_opened() -> None:
    gate = WriteGate()
    assert gate.is_set()
    assert await gate.wait()  # open: no waiting

    gate.clear()
    assert not gate.is_set()
    started = [asyncio.Event() for _ in range(3)]

    async def wait_for_gate(started: asyncio.Event) -> bool:
        started.set()
        return await gate.wait()  # registers before this task yields

    waiters = [asyncio.create_task(wait_for_gate(s)) for s in started]
    for event in started:
        await event.wait()
    assert not any(w.done() for w in waiters)

    waiters[0].cancel()  # a waiter that gives up is forgotten, not woken later
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters[1:]), FRAME_TIMEOUT_S) == [True, True]
    assert waiters[0].cancelled()
    assert gate.is_set()
