"""The roomwire app the benchmark runs: the same room broadcast logic as the baselines.

`move` updates the room's positions and broadcasts `moved` to every player of the room; `echo`
answers the sender only (the `ping` scenario's request → reply).
"""

from __future__ import annotations

from typing import Any

import msgspec

from roomwire import App, Player, Room

app = App("bench")
room = app.room("bench", max_players=1000, rate_limit=None)


class Move(msgspec.Struct):
    """A player's new position, stamped with the sender's clock (time.monotonic_ns)."""

    x: float
    y: float
    ts: int


@room.on_create
def create(room: Room, options: Any) -> None:
    """Start with no positions."""
    room.state["pos"] = {}


@room.message("move")
def move(room: Room, player: Player, msg: Move) -> None:
    """Record the position and tell everyone in the room."""
    room.state["pos"][player.id] = [msg.x, msg.y]
    room.broadcast("moved", p=player.id, x=msg.x, y=msg.y, ts=msg.ts)


@room.message("echo")
def echo(room: Room, player: Player, msg: dict[str, Any]) -> None:
    """Send the message back to its sender only."""
    room.send(player, "echo", msg)
