"""High-card bots: N players play one game through the Python client, reading only `room.synced`.

    python examples/cards/bot.py --url http://127.0.0.1:8000 --bots 3

The first bot creates a room, the others join it by id, the first starts the game once everyone
is in. Every bot plays a random card of its hand whenever the synced `turn` is its own; it never
reads an event. One summary line, then exit status 0 when every bot's final view agrees on
everything but its own hand:

    cards: room=... bots=3 winner=g-... scores=2,1,2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from typing import Any

from roomwire_client import Client, Room


class Bot:
    """One player: wakes on every change of `turn` or `winner` and plays when it is its turn."""

    def __init__(self, room: Room, rng: random.Random) -> None:
        self.room = room
        self.rng = rng
        self.changed = asyncio.Event()
        for path in ("turn", "winner", "players"):
            room.on_change(path, lambda change: self.changed.set())

    async def play(self) -> dict[str, Any]:
        """Play until the game has a winner; returns the final synced view."""
        while True:
            view = self.room.synced
            if view is not None and view["winner"] is not None:
                return dict(view)
            if view is not None and view["turn"] == self.room.player and view["hand"]:
                await self.room.request("play", {"card": self.rng.choice(view["hand"])})
                continue
            self.changed.clear()
            await self.changed.wait()


async def main() -> int:
    """Run the bots; print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--bots", type=int, default=3, choices=range(2, 5))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(args.url)) for _ in range(args.bots)]
        for client in clients:
            await client.login_guest()
        first = await clients[0].create("cards")
        rooms = [first] + [await client.join(first.id) for client in clients[1:]]
        bots = [Bot(room, rng) for room in rooms]
        async with asyncio.timeout(30):
            while first.synced is None or len(first.synced["players"]) < args.bots:
                bots[0].changed.clear()
                await bots[0].changed.wait()
            await first.request("start")
            views = await asyncio.gather(*(bot.play() for bot in bots))
        for room in rooms:
            await room.leave()
    public = [{k: v for k, v in view.items() if k != "hand"} for view in views]
    scores = ",".join(str(views[0]["scores"][pid]) for pid in views[0]["players"])
    print(f"cards: room={first.id} bots={args.bots} winner={views[0]['winner']} scores={scores}")
    return 0 if all(p == public[0] for p in public) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
