"""A handler whose cleanup awaits after the deadline cancelled it is still bounded.

Found by an outside probe: the step deadline cancelled the handler once. A handler that awaits
again while unwinding (in a `finally`, an `async with` exit, a retry after catching the
cancellation) was never interrupted again: its room froze for good, every later input of every
player unanswered, and shutdown waited on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_harness import serving

from roomwire import App
from roomwire.testing import serve_app

STEP_TIMEOUT_S = 0.5


def cleanup_app() -> App:
    """A room type whose `hang` handler, once cancelled, awaits forever in its cleanup."""
    app = App("step-deadline-cleanup")
    room_type = app.room(
        "slow", max_players=4, rate_limit=None, idle_timeout_s=60, step_timeout_s=STEP_TIMEOUT_S
    )

    @room_type.message("move")
    def move(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("moved", p=player.id)

    @room_type.message("hang")
    async def hang(room: Any, player: Any, msg: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.Event().wait()  # cleanup that never finishes on its own

    @room_type.message("stubborn")
    async def stubborn(room: Any, player: Any, msg: Any) -> None:
        for _ in range(3):  # swallows the cancellation twice, then lets it through
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue
        room.broadcast("never")

    return app


async def test_a_handler_awaiting_in_its_cleanup_is_refused_and_the_room_goes_on() -> None:
    app = cleanup_app()
    async with serve_app(app) as url, serving(url, app) as server:
        a, seat = await server.player(create=True, type="slow")
        b, _ = await server.player(await server.seat(room=seat.room))
        room = seat.room
        for kind in ("hang", "stubborn"):
            sent = await a.msg(room, kind)
            reject = await a.recv_until("reject", timeout=8 * STEP_TIMEOUT_S + 5, id=sent)
            assert reject["code"] == "step_timeout", reject
            moved = await b.msg(room, "move")
            await b.recv_until("ack", id=moved)
        assert not [f for f in a.frames + b.frames if f.get("type") == "never"]
