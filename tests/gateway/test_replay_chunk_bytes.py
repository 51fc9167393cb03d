"""A resume reads the history in chunks bounded in bytes, not only in events.

Found by an outside probe: a resume read 256 events per call whatever their size. On Redis each
read decodes its own copy of every event, so a client that resumes and then stops reading held
256 large events (up to 256 MiB at the 1 MiB event limit) in the gateway for as long as it
stayed connected, and many such clients multiplied it. The replay now sizes each read by what
the events it sent weighed (about 1 MiB per read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import websockets
from gateway_harness import serving

from roomwire import App
from roomwire.backends.embedded import EmbeddedBackend
from roomwire.backends.records import OutEvent
from roomwire.testing import serve_app

EVENT_BYTES = 100_000
EVENTS = 60


class CountingBackend(EmbeddedBackend):
    """The real in-memory backend, remembering the `limit` of each history read."""

    def __init__(self) -> None:
        super().__init__(None, "rw")
        self.limits: list[int | None] = []

    async def read_events(self, room_id: str, after: int, limit: int | None = None) -> Sequence[OutEvent]:
        self.limits.append(limit)
        return await super().read_events(room_id, after, limit)


def big_app() -> App:
    """A room type whose `burst` message emits EVENTS events of EVENT_BYTES each."""
    app = App("replay-chunks")
    room_type = app.room("big", history=1024, rate_limit=None, idle_timeout_s=120, reconnect_grace_s=120)

    @room_type.message("burst")
    def burst(room: Any, player: Any, msg: Any) -> None:
        for i in range(EVENTS):
            room.broadcast("chunk", i=i, pad="x" * EVENT_BYTES)

    return app


async def test_a_resume_of_large_events_reads_about_a_mebibyte_at_a_time() -> None:
    app = big_app()
    backend = CountingBackend()
    async with serve_app(app, backend) as url, serving(url, app) as server:
        resumer, seat = await server.player(create=True, type="big")
        room = seat.room
        rejoin = [f for f in resumer.frames if f["t"] == "joined"][-1]["rejoin"]
        await resumer.aclose()
        producer, _ = await server.player(await server.seat("big", room=room))
        producer.record = False
        for _ in range(2):
            sent = await producer.msg(room, "burst")
            await producer.recv_until("ack", timeout=30, id=sent)

        backend.limits.clear()
        back = await server.connect()
        back.record = False
        await back.send({"t": "join", "room": room, "seat": rejoin, "since": 0})
        await back.recv_until("joined", room=room)
        seqs = [(await back.recv(30))["seq"] for _ in range(2 * EVENTS)]
        assert seqs == list(range(1, 2 * EVENTS + 1))
        reads = [limit for limit in backend.limits if limit is not None]
        assert reads, backend.limits
        assert max(reads) * EVENT_BYTES <= 2 * 1024 * 1024, reads


async def test_a_stalled_resume_holds_live_events_up_to_the_send_queue_bytes_only() -> None:
    # On main the live buffer was bounded in frames only (2048): 120 live events of 100 KB
    # (12 MB) stayed held for a resumer that read nothing, for as long as it stayed connected.
    app = big_app()
    async with serve_app(app, CountingBackend()) as url, serving(url, app) as server:
        resumer, seat = await server.player(create=True, type="big")
        room = seat.room
        rejoin = [f for f in resumer.frames if f["t"] == "joined"][-1]["rejoin"]
        await resumer.aclose()
        producer, _ = await server.player(await server.seat("big", room=room))
        producer.record = False
        for _ in range(3):  # 18 MB of history: more than the socket buffers and half the queue
            sent = await producer.msg(room, "burst")
            await producer.recv_until("ack", timeout=30, id=sent)

        stalled = await server.connect(max_queue=1)  # its client library stops reading
        await stalled.send({"t": "join", "room": room, "seat": rejoin, "since": 0})
        for _ in range(2):  # 12 MB live, 120 frames: past the 8 MiB queue bytes, not its frames
            sent = await producer.msg(room, "burst")
            await producer.recv_until("ack", timeout=30, id=sent)
        stalled.record = False
        async with asyncio.timeout(60):
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await stalled.recv(30)
        assert stalled.ws.close_code == 4002, (stalled.ws.close_code, stalled.ws.close_reason)
