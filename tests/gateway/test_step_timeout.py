"""A handler that never returns: its step is bounded, rolled back and refused; shutdown does not hang."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway_harness import FRAME_TIMEOUT_S, serving

from roomwire import App
from roomwire.testing import serve_app

STEP_TIMEOUT_S = 0.5


def hanging_app(step_timeout_s: float | None) -> App:
    """A room type whose `hang` handler awaits forever after changing state and broadcasting."""
    app = App("step-timeout-tests")
    room_type = app.room(
        "slow", max_players=4, rate_limit=None, idle_timeout_s=60, step_timeout_s=step_timeout_s
    )

    @room_type.on_create
    def create(room: Any, options: dict[str, Any]) -> None:
        room.state["total"] = 0

    @room_type.message("move")
    def move(room: Any, player: Any, msg: Any) -> None:
        room.state["total"] += 1
        room.broadcast("moved", p=player.id, total=room.state["total"])

    @room_type.message("hang")
    async def hang(room: Any, player: Any, msg: Any) -> None:
        room.state["total"] += 1000
        room.broadcast("never", p=player.id)
        await asyncio.Event().wait()  # awaits forever

    return app


async def test_a_hung_handler_is_refused_with_timeout_and_the_room_goes_on() -> None:
    app = hanging_app(STEP_TIMEOUT_S)
    async with serve_app(app) as url, serving(url, app) as server:
        a, seat = await server.player(create=True, type="slow")
        b, _ = await server.player(await server.seat(room=seat.room))
        room = seat.room
        # B's message comes first in the same batch as A's hanging one (or just before it).
        await b.msg(room, "move")
        started = time.monotonic()
        await a.msg(room, "hang")
        await b.msg(room, "move")

        reject = await a.recv_until("reject", id=1)
        assert reject["code"] == "step_timeout", reject
        assert reject.get("ref"), reject
        assert time.monotonic() - started < STEP_TIMEOUT_S + FRAME_TIMEOUT_S / 2
        assert (await b.recv_until("ack", id=1))["t"] == "ack"
        assert (await b.recv_until("ack", id=2))["t"] == "ack"

        # The room still runs, and the hung step left nothing behind.
        await a.msg(room, "move")
        assert (await a.recv_until("ack", id=2))["t"] == "ack"
        moved = a.events(room, "moved")  # an event comes before the ack of its commit
        assert [e["data"]["total"] for e in moved] == [1, 2, 3], moved
        assert not [f for f in a.frames + b.frames if f.get("type") == "never"]


async def test_shutdown_returns_while_a_handler_hangs() -> None:
    app = hanging_app(None)  # no step bound at all: only cancelling the step can end it
    started = 0.0
    async with serve_app(app) as url:
        async with serving(url, app) as server:
            a, seat = await server.player(create=True, type="slow")
            await a.msg(seat.room, "hang")
            await a.msg(seat.room, "move")
            await asyncio.sleep(0.3)  # the worker is now inside the hung step
            assert app.gateway is not None and app.gateway.worker is not None
            assert seat.room in app.gateway.worker.room_ids
        started = time.monotonic()
    # serve_app waits up to 10 s for the server to stop and raises TimeoutError if it does not.
    assert time.monotonic() - started < 8
