"""Random synced-state histories for the JS mirror's property test, computed by the server's code.

Prints JSON: a list of cases, each {"watch": [pattern, ...], "initial": state, "steps": [{"ops",
"state", "changes"}]}: `ops` is what the server sends (roomwire.protocol.patch.diff) for the step,
`state` the server's state after it, and `changes` what the Python SDK's StateMirror reports to
watchers of the patterns (path, value, removed) when fed the same events.

Usage: python patch_cases.py SEED CASES STEPS
"""

from __future__ import annotations

import copy
import json
import random
import sys
from typing import Any

from roomwire.protocol.mirror import Change, StateMirror
from roomwire.protocol.patch import diff

KEYS = ["a", "b", "c", "players", "list", "0", "__proto__", "x y"]
WATCH: list[list[Any]] = [["players", "*"], ["list", "*"], ["a"], ["players", "*", "x"], ["*"]]


def scalar(rng: random.Random) -> Any:
    # No 0 or 1 next to the booleans: the server's diff compares with Python's `==`, where
    # `True == 1`, so a 1 that becomes True is not sent (a documented limit: docs/guarantees.md).
    return rng.choice(
        [None, True, False, rng.choice([-3, -2, 2, 3, 5]), rng.choice([0.5, 2.25, -3.5]), rng.choice("xyz")]
    )


def value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.4:
        return scalar(rng)
    if roll < 0.7:
        return {rng.choice(KEYS): value(rng, depth - 1) for _ in range(rng.randint(0, 4))}
    return [value(rng, depth - 1) for _ in range(rng.randint(0, 5))]


def containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            containers(child, out)
    return out


def mutate(rng: random.Random, state: dict[str, Any]) -> None:
    """One to three random edits of the kinds a game makes."""
    for _ in range(rng.randint(1, 3)):
        node = rng.choice(containers(state, []))
        kind = rng.random()
        if isinstance(node, dict):
            if node and kind < 0.3:
                del node[rng.choice(list(node))]
            else:
                node[rng.choice(KEYS)] = value(rng, 2) if kind < 0.7 else scalar(rng)
        elif node and kind < 0.25:
            node.pop(rng.randrange(len(node)))  # from anywhere: later indexes shift
        elif kind < 0.5:
            node.insert(rng.randint(0, len(node)), value(rng, 1))
        elif node and kind < 0.8:
            node[rng.randrange(len(node))] = value(rng, 2)
        else:
            node.append(scalar(rng))


def main() -> None:
    seed, cases, steps = (int(a) for a in sys.argv[1:4])
    rng = random.Random(seed)
    out = []
    for _ in range(cases):
        state: dict[str, Any] = {"players": {"p1": {"x": 2, "y": 3}}, "list": [2, 3, 5], "a": -2}
        mirror = StateMirror()
        changes: list[list[Any]] = []

        def record(change: Change, changes: list[list[Any]] = changes) -> None:
            # A copy now: the value is the mirror's own object, which later patches change.
            changes.append([list(change.path), copy.deepcopy(change.value), change.removed])

        for pattern in WATCH:
            mirror.on_change(pattern, record)
        initial = copy.deepcopy(state)
        mirror.on_event(1, "@state", copy.deepcopy(initial))
        sent = copy.deepcopy(state)  # what the clients hold: the server diffs against it
        recorded = []
        for i in range(steps):
            mutate(rng, state)
            ops = diff(sent, state)
            sent = copy.deepcopy(state)
            changes.clear()
            mirror.on_event(i + 2, "@patch", json.loads(json.dumps(ops)))
            assert mirror.state == state
            recorded.append(
                {
                    "ops": ops,
                    "state": copy.deepcopy(state),
                    "changes": list(changes),
                }
            )
        out.append({"watch": WATCH, "initial": initial, "steps": recorded})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
