"""A sleeping room wakes for its first join even when the wake-up message is lost.

Scheduling follows pending input (issue #10 item 4): the worker's sweep claims a hibernating room
whose inbound log holds input above its committed offset, so a lost wake-up (a pub/sub drop, a
worker that was not listening) costs one sweep interval, not the join.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gateway_harness import Server, serving

from roomwire import App
from roomwire.backends.base import Backend
from roomwire.backends.redis import RedisBackend
from roomwire.runtime.worker import Worker
from roomwire.testing import serve_app

REDIS_URL = "redis://127.0.0.1:6379/0"
JOIN_BOUND_S = 5.0  # sweeps run every 0.5 s; the gateway itself gives up on a join after 10 s


def sleepy_app() -> App:
    app = App("hibernation-tests")
    sleepy = app.room("sleepy", max_players=2, idle_timeout_s=0.3, auto_dispose=False, rate_limit=None)

    @sleepy.on_create
    def create(room: Any, options: dict[str, Any]) -> None:
        room.state["joins"] = 0

    @sleepy.on_join
    def join(room: Any, player: Any) -> None:
        room.state["joins"] += 1
        room.broadcast("hello", joins=room.state["joins"])

    return app


@pytest.fixture(params=["memory", "redis"])
async def served(
    request: pytest.FixtureRequest, require_engine: Callable[[str, str, int], None]
) -> AsyncIterator[tuple[Server, Worker, Backend | None]]:
    """The sleepy app with its worker in the gateway process, on one backend."""
    backend: Backend | None = None
    if request.param == "redis":
        require_engine("redis", "127.0.0.1", 6379)
        backend = RedisBackend(REDIS_URL, f"t-{uuid.uuid4().hex[:12]}")
    app = sleepy_app()
    try:
        async with serve_app(app, backend) as url, serving(url, app) as srv:
            gateway = app.gateway
            assert gateway is not None and gateway.worker is not None
            yield srv, gateway.worker, backend
    finally:
        if backend is not None:
            await backend.open()
            await backend.drop_all()
            await backend.aclose()


async def until_asleep(worker: Worker, room: str) -> None:
    """Wait until the worker let the room go (it hibernated)."""
    deadline = time.monotonic() + 10
    while room in worker.room_ids:
        assert time.monotonic() < deadline, "the room never hibernated"
        await asyncio.sleep(0.02)  # the idle timeout is a deadline passing: nothing to wait on


async def test_first_join_to_a_sleeping_room_is_answered_when_its_wake_up_is_lost(
    served: tuple[Server, Worker, Backend | None],
) -> None:
    srv, worker, _ = served
    first, seat = await srv.player(type="sleepy", create=True)
    await first.send({"t": "leave", "room": seat.room})
    await first.recv_until("left", room=seat.room)
    await until_asleep(worker, seat.room)

    # Lose every wake-up from now on: the worker no longer hears about appended input.
    assert worker._unwatch is not None
    worker._unwatch()

    late = await srv.connect()
    started = time.monotonic()
    await late.send({"t": "join", "room": seat.room, "seat": (await srv.seat(room=seat.room)).seat})
    joined = await late.recv_until("joined", timeout=JOIN_BOUND_S, room=seat.room)
    answered_s = time.monotonic() - started
    hello = await late.recv_until("event", room=seat.room, type="hello")
    print(f"\nfirst join to a sleeping room, wake-up lost: answered in {answered_s:.2f} s")
    assert joined["seq"] == 1 and hello["data"] == {"joins": 2}  # woke with its state
