"""The game the fault tests run: per-room counters whose every change is checkable.

Each `add` carries the sending client's name and its own running number `k`; the room counts
adds and broadcasts each one with the new count, so a test can tell a lost add (an acked k
missing from the events), a doubled one (a k seen twice, or a count above the acked adds) and
a gap (a seq or count skipped). A timer ticks every 0.2 s with its own count, so a timer that
is lost or fires twice across a failover shows too. A `slow` add blocks its worker for a while
first, so a test can stop the worker in the middle of a step. `sleepy` rooms hibernate one
second after the last player leaves. A counter room tells its players who disconnected, and the
gateways keep their presence with a 3 s TTL (longer than the Redis restart test's outage), so a
test sees a killed gateway's players go within seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import msgspec

from roomwire import App, GatewaySettings, Player, Room

app = App("faults", settings=GatewaySettings(presence_ttl_s=3.0))
counter = app.room("counter", max_players=4, rate_limit=None, reconnect_grace_s=60.0, history=100_000)
sleepy = app.room("sleepy", max_players=2, idle_timeout_s=1.0, auto_dispose=False, reconnect_grace_s=0.5)

TICK_S = 0.2


class Add(msgspec.Struct, frozen=True):
    """One add: who sent it (client name) and its number among that client's adds."""

    c: str
    k: int


class Slow(msgspec.Struct, frozen=True):
    """An add whose handler first blocks its worker for `s` seconds."""

    c: str
    k: int
    s: float


def tick(room: Room) -> None:
    """The counter's timer: counts its own firings, so a lost or doubled firing shows."""
    room.state["ticks"] += 1
    room.broadcast("tick", n=room.state["ticks"])


@counter.on_create
def create_counter(room: Room, options: Any) -> None:
    room.state.update(n=0, ticks=0)
    room.every(TICK_S, tick)


@counter.on_disconnect
def disconnected(room: Room, player: Player) -> None:
    room.broadcast("disconnected", player=player.id)


@counter.message("add")
def add(room: Room, player: Player, msg: Add) -> None:
    room.state["n"] += 1
    room.broadcast("added", n=room.state["n"], c=msg.c, k=msg.k)


@counter.message("slow")
def slow(room: Room, player: Player, msg: Slow) -> None:
    # The line tells the test the step has begun; the blocking sleep (deliberate: it stalls the
    # whole worker, as a long GC pause or a stuck host would) leaves it time to SIGSTOP us here.
    print(f"slow handler running in room {room.id}", file=sys.stderr, flush=True)
    time.sleep(msg.s)
    add(room, player, Add(c=msg.c, k=msg.k))


@sleepy.on_create
def create_sleepy(room: Room, options: Any) -> None:
    room.state["n"] = 0


@sleepy.message("add")
def add_sleepy(room: Room, player: Player, msg: Add) -> None:
    room.state["n"] += 1
    room.broadcast("added", n=room.state["n"], c=msg.c, k=msg.k)


hung = app.room("hung", max_players=2, rate_limit=None, reconnect_grace_s=60.0, step_timeout_s=1.0)


@hung.on_create
def create_hung(room: Room, options: Any) -> None:
    room.state["n"] = 0


@hung.message("hang")
async def hang(room: Room, player: Player, msg: Any) -> None:
    """Awaits forever (a stuck call), so the step deadline must end it on whichever worker runs it."""
    room.state["n"] += 1000
    print(f"hang handler running in room {room.id}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


@hung.message("add")
def add_hung(room: Room, player: Player, msg: Add) -> None:
    room.state["n"] += 1
    room.broadcast("added", n=room.state["n"], c=msg.c, k=msg.k)
