"""A resume larger than the send queue streams under flow control; a reader that stalls is still cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from gateway_harness import RawClient, Server, serving

from roomwire import App
from roomwire.testing import serve_app

EVENT_BYTES = 9000
BURST = 100  # events per message: a commit of 0.9 MB


def burst_app() -> App:
    """A room type keeping 4096 events whose `burst` message emits BURST events of ~9 KB."""
    app = App("replay-tests")
    room_type = app.room(
        "big", history=4096, rate_limit=None, idle_timeout_s=120, reconnect_grace_s=120, max_players=4
    )

    @room_type.message("burst")
    def burst(room: Any, player: Any, msg: Any) -> None:
        for i in range(BURST):
            room.broadcast("chunk", i=i, pad="x" * EVENT_BYTES)

    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = burst_app()
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def _bursts(client: RawClient, room: str, count: int) -> None:
    """Send `count` bursts, reading everything they cause (the producer keeps up)."""
    client.record = False
    for _ in range(count):
        msg_id = await client.msg(room, "burst")
        await client.recv_until("ack", timeout=60, id=msg_id)


async def test_resume_far_beyond_the_send_queue_replays_everything_in_order(server: Server) -> None:
    resumer, seat = await server.player(create=True, type="big")
    room = seat.room
    rejoin = [f for f in resumer.frames if f["t"] == "joined"][-1]["rejoin"]
    await resumer.aclose()

    producer, _ = await server.player(await server.seat("big", room=room))
    await _bursts(producer, room, 30)  # 3000 events, ~27 MB: 1.5 x the queue's frames, 3 x its bytes

    back = await server.connect()
    back.record = False
    await back.send({"t": "join", "room": room, "seat": rejoin, "since": 0})
    joined = await back.recv_until("joined", room=room)
    assert joined["resumed"] is True and joined["seq"] == 3000, joined
    live = asyncio.create_task(_bursts(producer, room, 3))  # live commits while the replay runs
    seqs: list[int] = []
    async with asyncio.timeout(120):
        while len(seqs) < 3300:
            frame = await back.recv(60)
            assert frame["t"] == "event", frame
            seqs.append(frame["seq"])
    await live
    assert seqs == list(range(1, 3301))


async def test_a_resuming_client_that_stops_reading_is_closed_as_slow_consumer(server: Server) -> None:
    resumer, seat = await server.player(create=True, type="big")
    room = seat.room
    rejoin = [f for f in resumer.frames if f["t"] == "joined"][-1]["rejoin"]
    await resumer.aclose()
    producer, _ = await server.player(await server.seat("big", room=room))
    await _bursts(producer, room, 10)

    stalled = await server.connect(max_queue=1)  # its client library stops reading
    await stalled.send({"t": "join", "room": room, "seat": rejoin, "since": 0})
    # Live traffic keeps coming (27 MB) while the replay waits for a socket that never drains.
    await _bursts(producer, room, 30)
    stalled.record = False
    async with asyncio.timeout(120):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await stalled.recv(60)
    assert stalled.ws.close_code == 4002, (stalled.ws.close_code, stalled.ws.close_reason)
