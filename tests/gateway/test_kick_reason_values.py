"""A kick reason that is not a string cannot poison the room's snapshot.

Found by an outside probe: `room.kick(player, reason, ban=True)` stored `reason` as given in the
snapshot's `banned` map (declared `dict[str, str]`) and in the `removed` receipt. MessagePack
encoded an int there, so the step committed; the next rollback (any failing step) or recovery
could not decode the snapshot any more, and the kicked player's `left` frame carried a detail
that is not a string.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gateway_harness import serving

from roomwire import App
from roomwire.backends.redis import RedisBackend
from roomwire.testing import serve_app

REDIS_URL = "redis://127.0.0.1:6379/0"


def kick_app() -> App:
    """A room type whose `kick` handler kicks the other player with a number for a reason."""
    app = App("kick-reasons")
    room_type = app.room("k", max_players=4, rate_limit=None, idle_timeout_s=60)

    @room_type.message("kick")
    def kick(room: Any, player: Any, msg: Any) -> None:
        room.kick(msg, 7, ban=True)

    @room_type.message("boom")
    def boom(room: Any, player: Any, msg: Any) -> None:
        raise ValueError("a bug: the step is rolled back to the checkpoint")

    @room_type.message("say")
    def say(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("said", v=msg)

    return app


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_a_kick_reason_that_is_not_a_string_is_sent_as_one_and_the_room_goes_on(engine: str) -> None:
    app = kick_app()
    backend = RedisBackend(REDIS_URL, f"t-{uuid.uuid4().hex[:12]}") if engine == "redis" else None
    async with serve_app(app, backend) as base, serving(base, app) as server:
        a, seat = await server.player(create=True, type="k")
        b, b_seat = await server.player(await server.seat("k", room=seat.room))
        room = seat.room
        sent = await a.msg(room, "kick", b_seat.player)
        await a.recv_until("ack", id=sent)
        left = await b.recv_until("left")
        assert left["reason"] == "removed" and left.get("detail") == "7", left
        failed = await a.msg(room, "boom")  # rolls back: decodes the checkpoint with the ban in it
        assert (await a.recv_until("reject", timeout=5, id=failed))["code"] == "internal"
        said = await a.msg(room, "say", "still here")
        await a.recv_until("ack", timeout=5, id=said)
