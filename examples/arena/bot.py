"""Arena bots: N players that join one arena through the Python client and play tag.

    python examples/arena/bot.py --url http://127.0.0.1:8000 --bots 4 --seconds 20

"It" chases the nearest player; everyone else wanders between random waypoints. At the end the
bots leave and one summary line is printed:

    arena: bots=4 seconds=20.0 room=... moves_sent=... rejected=0 events_received=... tags=... rounds_over=...

Exit status 0 when every bot moved, received events and had no move refused; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
from typing import Any

from roomwire_client import Client, ClientError, RejectedError, Room


class Bot:
    """One player: sees the room in its synced state (`room.synced`) and sends legal moves."""

    def __init__(self, name: str, room: Room, rng: random.Random) -> None:
        self.name = name
        self.room = room
        self.me = room.player
        self.rng = rng
        self.ready = asyncio.Event()  # set by the first `@state`: we know the arena and our spot
        room.on_change("arena", lambda _change: self.ready.set())
        if room.mirror.ready:
            self.ready.set()
        self.waypoint: tuple[float, float] | None = None
        self.moves_sent = 0
        self.rejected = 0
        self.events_received = 0
        self.tags = 0  # tags this bot made
        self.rounds_over = 0

    async def listen(self) -> None:
        """Count the room's events (the moments: moves, tags, rounds) until the room is left."""
        async for event in self.room.events():
            self.events_received += 1
            if event.type == "tagged" and event.data["by"] == self.me:
                self.tags += 1
            elif event.type == "round_over":
                self.rounds_over += 1

    async def play(self, until: float, rate_hz: float) -> None:
        """Move every 1/rate_hz seconds until the loop time `until`."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            await self.ready.wait()
        while loop.time() < until:
            x, y = self.next_step()
            try:
                await self.room.request("move", {"x": x, "y": y})  # acked: the mirror has it
            except RejectedError as exc:
                self.rejected += 1
                print(f"{self.name}: move refused: {exc}", file=sys.stderr)
            self.moves_sent += 1
            await asyncio.sleep(1 / rate_hz)  # pacing, not waiting for a condition

    def next_step(self) -> tuple[float, float]:
        """One legal step toward the current target (the nearest prey, or a waypoint)."""
        state: Any = self.room.synced
        positions = {pid: (p["x"], p["y"]) for pid, p in state["players"].items()}
        here = positions[self.me]
        others = [pos for pid, pos in positions.items() if pid != self.me]
        nearest = min(others, key=lambda pos: math.dist(here, pos), default=None)
        target = nearest if state["it"] == self.me else None
        if target is None:
            if self.waypoint is None or math.dist(here, self.waypoint) < 1:
                self.waypoint = (
                    self.rng.uniform(0, state["arena"]["width"]),
                    self.rng.uniform(0, state["arena"]["height"]),
                )
            target = self.waypoint
        distance = math.dist(here, target)
        stride = state["arena"]["max_step"] * 0.9  # stay clear of the server's limit
        k = 1.0 if distance <= stride else stride / distance
        return (round(here[0] + (target[0] - here[0]) * k, 2), round(here[1] + (target[1] - here[1]) * k, 2))


async def join_bots(args: argparse.Namespace, clients: list[Client]) -> list[Room]:
    """Bot 0 joins (or creates) an arena; the others join that same room."""
    options = {"round_s": args.round_s, "pause_s": args.pause_s}
    for i, client in enumerate(clients):
        await client.login_guest(f"bot-{i}")
    first = clients[0]
    room = await (first.join(args.room) if args.room else first.join_or_create("arena", options=options))
    others = await asyncio.gather(*(client.join(room.id) for client in clients[1:]))
    return [room, *others]


async def run(args: argparse.Namespace) -> int:
    """Play for `args.seconds`, print the summary line, return the exit status."""
    rng = random.Random(args.seed)
    clients = [Client(args.url, reconnect_timeout_s=10) for _ in range(args.bots)]
    bots: list[Bot] = []
    try:
        async with asyncio.timeout(args.seconds + 30):  # joining, playing, leaving: all bounded
            rooms = await join_bots(args, clients)
            bots = [Bot(f"bot-{i}", room, random.Random(rng.random())) for i, room in enumerate(rooms)]
            until = asyncio.get_running_loop().time() + args.seconds
            async with asyncio.TaskGroup() as tasks:
                listeners = [tasks.create_task(bot.listen()) for bot in bots]
                await asyncio.gather(*(bot.play(until, args.rate) for bot in bots))
                await asyncio.gather(*(bot.room.leave() for bot in bots))
                for listener in listeners:
                    await listener  # events() ends once the room is left
    except (ClientError, TimeoutError, ExceptionGroup) as exc:
        print(f"arena bots failed: {exc!r}", file=sys.stderr)
        return 1
    finally:
        for client in clients:
            with contextlib.suppress(ClientError):
                await client.aclose()

    moves = sum(b.moves_sent for b in bots)
    rejected = sum(b.rejected for b in bots)
    events = sum(b.events_received for b in bots)
    print(
        f"arena: bots={len(bots)} seconds={args.seconds} room={bots[0].room.id} moves_sent={moves} "
        f"rejected={rejected} events_received={events} tags={sum(b.tags for b in bots)} "
        f"rounds_over={bots[0].rounds_over}"
    )
    is_ok = rejected == 0 and all(b.moves_sent > 0 and b.events_received > 0 for b in bots)
    return 0 if is_ok else 1


def main() -> int:
    """Parse the command line and run the bots."""
    parser = argparse.ArgumentParser(description="Arena bots: join one arena and play tag.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--bots", type=int, default=4, help="number of bots (the arena takes 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to play")
    parser.add_argument("--rate", type=float, default=10.0, help="moves per second per bot")
    parser.add_argument("--room", default=None, help="join this room id instead of join-or-create")
    parser.add_argument("--round-s", type=float, default=60.0, help="round length, if a room is created")
    parser.add_argument("--pause-s", type=float, default=5.0, help="pause between rounds, if created")
    parser.add_argument("--seed", type=int, default=None, help="seed the bots' choices")
    args = parser.parse_args()
    if args.bots < 1 or args.seconds <= 0 or args.rate <= 0:
        parser.error("--bots, --seconds and --rate must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
