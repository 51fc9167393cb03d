"""A synced room whose players scramble its state at random, for the JS SDK's mirror tests.

`scramble {seed}` makes one to three random edits of `room.state` (keys set and deleted, list
elements inserted, replaced and removed anywhere, subtrees replaced) chosen by `seed`; `dump`
sends the server's state, as it is now, to the asking player only (event `dump`), so a client can
compare its mirror with it at that seq. The `chat` relay room elects a host. Run with `roomwire
run` by clients/js/test/synced.test.mjs.
"""

from __future__ import annotations

import random
from typing import Any

from roomwire import App, Player, Room

app = App("synced-test")
box = app.room("box", max_players=8, sync=True, rate_limit=None, reconnect_grace_s=30)

KEYS = ["a", "b", "c", "list", "0", "10", "x y"]


def _scalar(rng: random.Random) -> Any:
    # No booleans: the diff compares with Python's `==`, where `True == 1` (docs/guarantees.md).
    return rng.choice([None, rng.randint(-9, 9), rng.choice([0.5, -2.25]), rng.choice("xyz")])


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.4:
        return _scalar(rng)
    if roll < 0.7:
        return {rng.choice(KEYS): _value(rng, depth - 1) for _ in range(rng.randint(0, 3))}
    return [_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, out)
    return out


@box.on_create
def create(room: Room, options: dict[str, Any]) -> None:
    """Start from a small state with a map and a list."""
    room.state.update(players={}, list=[2, 3, 5], a=-2)


@box.on_join
def join(room: Room, player: Player) -> None:
    room.state["players"][player.id] = {"moves": 0}


@box.on_leave
def leave(room: Room, player: Player, reason: str) -> None:
    del room.state["players"][player.id]


@box.message("scramble")
def scramble(room: Room, player: Player, msg: dict[str, int]) -> None:
    """One to three random edits chosen by the seed (the player's own entry is kept)."""
    rng = random.Random(msg["seed"])
    state = room.state
    for _ in range(rng.randint(1, 3)):
        # Anywhere but under `players` (the game's own part: one entry per player).
        nodes = [state] + [n for k, v in state.items() if k != "players" for n in _containers(v, [])]
        node = rng.choice(nodes)
        kind = rng.random()
        if isinstance(node, dict):
            protected = {"players"} if node is state else set()
            if kind < 0.3 and set(node) - protected:
                del node[rng.choice(sorted(set(node) - protected))]
            else:
                key = rng.choice([k for k in KEYS if k not in protected])
                node[key] = _value(rng, 2)
        elif node and kind < 0.25:
            node.pop(rng.randrange(len(node)))
        elif kind < 0.5:
            node.insert(rng.randint(0, len(node)), _value(rng, 1))
        elif node and kind < 0.8:
            node[rng.randrange(len(node))] = _value(rng, 2)
        else:
            node.append(_scalar(rng))
    state["players"][player.id]["moves"] += 1


@box.message("dump")
def dump(room: Room, player: Player, msg: None) -> None:
    """The server's state now, to the asking player."""
    room.send(player, "dump", room.state)


# A relay room with a host (docs/protocol.md §16): no server code.
app.relay("chat", max_players=4, host=True)
