"""A client that stops reading is closed (4002) and server memory stays bounded; others go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from gateway_harness import FRAME_TIMEOUT_S, Server, make_app
from prometheus_client.parser import text_string_to_metric_families

from roomwire import GatewaySettings
from roomwire.testing import serve_app

QUEUE_BYTES = 256 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.fixture
async def small_queue_server() -> AsyncIterator[Server]:
    app = make_app(GatewaySettings(max_queue_frames=64, max_queue_bytes=QUEUE_BYTES, metrics=True))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT_S) as http:
        srv = Server(url, app, http)
        yield srv
        for client in srv.clients:
            await client.ws.close()


async def test_slow_consumer_is_closed_and_memory_stays_bounded(small_queue_server: Server) -> None:
    server = small_queue_server
    fast, seat = await server.player(create=True)
    slow_seat = await server.seat(room=seat.room)
    slow = await server.connect(max_queue=1)  # its client library stops reading from the socket
    assert (await slow.join(slow_seat))["t"] == "joined"

    fast.record = False  # this process hosts the server too: only the server's memory may count
    before = _rss_bytes()
    blobs = 3000  # 10 kB each: 30 MB for the slow client, far beyond what the gateway may hold
    window = 32
    received = 0
    for i in range(blobs):
        await fast.msg(seat.room, "blob", id=None)
        while i - received >= window:  # keep a bounded number in flight, like a real client
            frame = await fast.recv()
            received += frame["t"] == "event" and frame["type"] == "blob"
    async with asyncio.timeout(60):
        while received < blobs:
            frame = await fast.recv()
            received += frame["t"] == "event" and frame["type"] == "blob"
    growth = _rss_bytes() - before
    assert growth < 24 * 1024 * 1024, f"server memory grew by {growth / 1e6:.1f} MB"

    # The slow client finds, after what was already on the wire, a close with the reason.
    async with asyncio.timeout(60):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await slow.ws.recv()
    assert slow.ws.close_code == 4002 and "slow consumer" in (slow.ws.close_reason or "")
    # The room and the fast player were not held back.
    fast.record = True
    await fast.msg(seat.room, "move", {"n": 1})
    assert (await fast.recv_until("event", type="moved"))["data"]["total"] == 1
    # Operators see it on /metrics (docs/operations.md).
    page = (await server.http.get("/metrics")).text
    samples = {
        (m.name, tuple(m.labels.items())): m.value
        for f in text_string_to_metric_families(page)
        for m in f.samples
    }
    assert samples[("roomwire_slow_consumer_closes_total", ())] == 1
    assert samples[("roomwire_connections_closed_total", (("code", "4002"),))] == 1
