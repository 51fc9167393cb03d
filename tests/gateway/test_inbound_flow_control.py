"""The receive side of a connection: every message reaches the app in order, and a client that sends
faster than the app reads is held back by pausing the socket, not buffered without bound."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
import websockets
from gateway_harness import uvicorn_on_free_port

from roomwire.gateway._inbound import PAUSE_BYTES, PAUSE_FRAMES, InboundQueue
from roomwire.gateway._uvicorn_ws import RoomwireWebSocketProtocol
from roomwire.gateway.server import uvicorn_config

TIMEOUT_S = 10.0
MESSAGES = 400
PAYLOAD = "x" * 1000


class StallingApp:
    """Accepts one WebSocket, then reads nothing until `release` is set; records what it read."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received: list[str] = []
        self.done = asyncio.Event()
        self.finish = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await self.release.wait()
        while len(self.received) < MESSAGES:
            message = await receive()
            if message["type"] != "websocket.receive":
                break
            self.received.append(message["text"])
        self.done.set()
        await self.finish.wait()


class ObservedProtocol(RoomwireWebSocketProtocol):
    """roomwire's protocol, telling the test when it first pauses reading."""

    first_paused: ObservedProtocol | None = None
    paused_event: asyncio.Event | None = None

    def send_receive_event_to_app(self) -> None:
        super().send_receive_event_to_app()
        if self.read_paused and self.paused_event is not None and not self.paused_event.is_set():
            ObservedProtocol.first_paused = self
            self.paused_event.set()


async def test_a_client_faster_than_the_app_is_paused_and_loses_nothing() -> None:
    app = StallingApp()
    ObservedProtocol.first_paused = None
    ObservedProtocol.paused_event = paused = asyncio.Event()

    def config(host: str, port: int) -> uvicorn.Config:
        settings = uvicorn_config(app, host, port, log_level="warning")
        settings.ws = ObservedProtocol
        return settings

    try:
        async with (
            uvicorn_on_free_port(config) as port,
            asyncio.timeout(TIMEOUT_S),
            websockets.connect(f"ws://127.0.0.1:{port}", max_queue=None) as ws,
        ):
            sent = [f"{i}:{PAYLOAD}" for i in range(MESSAGES)]
            for text in sent:
                await ws.send(text)
            # The app reads nothing yet: the server must stop reading the socket once the
            # queue reaches its bound, leaving the rest in the kernel's buffers.
            await paused.wait()
            protocol = ObservedProtocol.first_paused
            assert protocol is not None
            assert not protocol.transport.is_reading()
            held = protocol.queue.qsize()
            assert PAUSE_FRAMES <= held < MESSAGES
            # One read of the socket is parsed whole, so the bound is the pause point plus
            # at most one read's worth of messages.
            assert protocol.queue.bytes <= PAUSE_BYTES + 256 * 1024

            app.release.set()
            await app.done.wait()
            assert app.received == sent  # all of them, in order
            assert protocol.transport.is_reading()  # resumed once the app caught up
            app.finish.set()
    finally:
        app.finish.set()


async def test_the_receive_queue_keeps_order_and_size_across_partial_drains() -> None:
    queue = InboundQueue(asyncio.get_running_loop())
    taken: list[str] = []
    for batch in (3, 1, 5):
        for _ in range(batch):
            queue.put_nowait({"type": "websocket.receive", "text": str(len(taken) + queue.qsize())})
        for _ in range(batch - 1):  # leave one behind each time: the next batch queues after it
            taken.append((await queue.get())["text"])
    taken.append((await queue.get())["text"])
    taken += [(await queue.get())["text"] for _ in range(queue.qsize())]

    assert taken == [str(i) for i in range(9)]
    assert queue.empty() and queue.bytes == 0
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # let it wait (a yield, not a wait for something)
    queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert (await waiting)["type"] == "websocket.disconnect"
