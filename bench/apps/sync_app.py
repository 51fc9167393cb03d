"""The roomwire app of bench/sync_vs_colyseus.py: one game state, synced or sent by hand.

Both room types keep the same state, `players`: id → {x, y, score}, and each `move {x, y}`
changes the sender's x and y. `synced` is a synced room (`sync=True`): roomwire sends the change
as a `@patch` event. `events` is not synced: the handler broadcasts a hand-written
`moved {p, x, y}` event, what a game without synced state sends.
"""

from __future__ import annotations

from typing import Any

import msgspec

from roomwire import App, Player, Room

app = App("sync-bench")
synced = app.room("synced", max_players=1000, rate_limit=None, sync=True)
events = app.room("events", max_players=1000, rate_limit=None)


class Move(msgspec.Struct):
    """A player's new position."""

    x: float
    y: float


def create(room: Room, options: Any) -> None:
    """Start with no players."""
    room.state["players"] = {}


def join(room: Room, player: Player) -> None:
    """The player appears at the origin with no score."""
    room.state["players"][player.id] = {"x": 0.0, "y": 0.0, "score": 0}


def leave(room: Room, player: Player, reason: str) -> None:
    """Forget the player."""
    del room.state["players"][player.id]


def move_synced(room: Room, player: Player, msg: Move) -> None:
    """Record the position; roomwire sends the change to every client."""
    me = room.state["players"][player.id]
    me["x"] = msg.x
    me["y"] = msg.y


def move_events(room: Room, player: Player, msg: Move) -> None:
    """Record the position and tell everyone in the room by hand."""
    me = room.state["players"][player.id]
    me["x"] = msg.x
    me["y"] = msg.y
    room.broadcast("moved", p=player.id, x=msg.x, y=msg.y)


for kind in (synced, events):
    kind.on_create(create)
    kind.on_join(join)
    kind.on_leave(leave)
synced.message("move")(move_synced)
events.message("move")(move_events)
