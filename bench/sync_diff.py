"""Cost of state sync per step on a game-sized state: diff vs a full encode vs mutation tracking.

    .venv/bin/python bench/sync_diff.py            # a few seconds

The state is the arena's: 8 players with a position, score, hp and name, plus a round clock.
Each step moves one player (what one `move` input does). Reported in ns per step:

- `diff+settle`: what a synced room adds per step (roomwire.protocol.patch.diff of the
  previous mirror against the state, then apply_patch of fresh copies to the mirror);
- `unchanged`: the same for a step that changed nothing (the C-level `==` fast path);
- `encode state`: one msgpack encode of the state (what a diff by encoding would cost at least;
  roomwire's checkpoint already encodes the whole snapshot once per step);
- `tracked writes`: the same step's writes through a dict subclass that records each change
  (the Colyseus-style alternative: every handler write pays, and nested containers need wrapping).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from roomwire.protocol import Event
from roomwire.protocol.patch import apply_patch, copy_value, diff


def arena_state(players: int = 8) -> dict[str, Any]:
    """A state shaped like examples/arena's."""
    return {
        "round": 3,
        "ends_at": 1_700_000_000.0,
        "players": {
            f"player-{i}": {"name": f"Player {i}", "pos": (i * 10.0, i * 5.0), "score": i, "hp": 100}
            for i in range(players)
        },
    }


class TrackedDict(dict[str, Any]):
    """A dict that records every key written (the mutation-tracking alternative)."""

    __slots__ = ("changes",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.changes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.changes.append(key)
        super().__setitem__(key, value)


def per_step_ns(fn: Any, n: int) -> float:
    """Best of 5 runs of n calls, ns per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def main() -> None:
    """Print ns per step for each approach, for 8 and 64 players."""
    for players in (8, 64):
        measure(players)


def measure(players: int) -> None:
    """Print ns per step for each approach on a state of `players` players."""
    n = 20_000
    state = arena_state(players)
    mirror = copy_value(state)
    sizes: list[int] = []

    def step(i: int) -> None:
        nonlocal mirror
        player = state["players"][f"player-{i % players}"]
        player["pos"] = (float(i), float(i + 1))
        ops = diff(mirror, state)
        sizes.append(len(msgspec.msgpack.encode(ops)))
        mirror = apply_patch(
            mirror, [[op[0], op[1], copy_value(op[2])] if len(op) == 3 else op for op in ops]
        )

    def unchanged(_: int) -> None:
        diff(mirror, state)

    def encode(_: int) -> None:
        msgspec.msgpack.encode(state)

    tracked = {pid: TrackedDict(p) for pid, p in state["players"].items()}

    def tracked_step(i: int) -> None:
        player = tracked[f"player-{i % players}"]
        player["pos"] = (float(i), float(i + 1))
        player.changes.clear()

    def plain_step(i: int) -> None:
        state["players"][f"player-{i % players}"]["pos"] = (float(i), float(i + 1))

    print(f"--- {players} players")
    print(f"state: {len(msgspec.msgpack.encode(state))} B msgpack, {len(msgspec.json.encode(state))} B JSON")
    print(f"diff+settle (one move):   {per_step_ns(step, n) - per_step_ns(plain_step, n):8.0f} ns/step")
    print(f"patch size (one move):    {sizes[-1]:8d} B msgpack")
    moved = state["players"]["player-1"]["pos"]
    by_hand = Event("R1abcdefghij", 1234, "moved", {"player": "player-1", "pos": moved})
    synced = Event("R1abcdefghij", 1234, "@patch", [["set", ["players", "player-1", "pos"], moved]])
    print(
        f"event frame, JSON bytes:  {len(msgspec.json.encode(synced)):8d} B @patch"
        f" vs {len(msgspec.json.encode(by_hand))} B a hand-written 'moved' event"
    )
    print(f"unchanged (no patch):     {per_step_ns(unchanged, n):8.0f} ns/step")
    print(f"encode state (msgpack):   {per_step_ns(encode, n):8.0f} ns/step")
    print(
        f"tracked writes overhead:  {per_step_ns(tracked_step, n) - per_step_ns(plain_step, n):8.0f} ns/step"
    )


if __name__ == "__main__":
    main()


def machine_steps() -> None:
    """ns per `move` step of a whole room step (RoomMachine, no I/O), sync off / on / with a view."""
    for mode in ("off", "on", "view"):
        print(f"room step, sync {mode:4}:     {room_step_ns(mode):8.0f} ns/step (RoomMachine)")


def room_step_ns(mode: str) -> float:
    """ns per step of an 8-player room whose `move` changes one position."""
    from roomwire import App
    from roomwire.backends.records import MessageInput
    from roomwire.testing import RoomTester
    from roomwire.testing.tester import _run as run_step

    app = App("bench")
    arena = app.room("arena", sync=mode != "off", max_players=8, rate_limit=None)

    @arena.on_join
    def join(room: Any, player: Any) -> None:
        players = room.state.setdefault("players", {})
        players[player.id] = {"name": player.id, "pos": (0.0, 0.0), "score": 0}

    @arena.message("move")
    def move(room: Any, player: Any, msg: Any) -> None:
        room.state["players"][player.id]["pos"] = (msg, msg)
        room.broadcast("moved", p=player.id)

    if mode == "view":

        @arena.view
        def view(room: Any, player: Any) -> Any:
            return {"players": room.state["players"], "me": player.id}

    tester = RoomTester(arena)
    for i in range(8):
        tester.join(f"p{i}")
    machine = tester.machine

    def step(i: int) -> None:
        # The machine alone: the tester's own per-player mirrors are not part of the server.
        run_step(machine.apply(MessageInput(f"p{i % 8}", "move", float(i), None, 0.0)))
        machine.take_output()

    return per_step_ns(step, 3000)


if __name__ == "__main__":
    machine_steps()
