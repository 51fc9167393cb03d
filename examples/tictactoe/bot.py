"""Tic-tac-toe bots: two players play full games of random legal moves through the Python client.

    python examples/tictactoe/bot.py --url http://127.0.0.1:8000 --games 3

The first bot creates a private room and the second joins it by id; after each game both ask for
a rematch until `--games` games are played. Then they leave and one summary line is printed:

    tictactoe: room=... games=3 moves=21 events_received=... results=X,draw,O

`results` lists each game's winning mark (the marks swap every game) or `draw`. Exit status 0
when every game reached an end and both bots saw the same results; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from typing import Any

from roomwire_client import Client, ClientError, Room


class Player:
    """One bot: follows the board from the events and plays a random free cell on its turn."""

    def __init__(self, room: Room, games: int, rng: random.Random) -> None:
        self.room = room
        self.me = room.player
        self.games = games
        self.rng = rng
        self.board: list[str | None] = [None] * 9
        self.marks: dict[str, str] = {}  # mark -> player id, for the current game
        self.results: list[str] = []  # per game: "X", "O" or "draw"
        self.moves = 0
        self.events_received = 0

    async def play(self) -> None:
        """React to the room's events until `games` games are over."""
        async for event in self.room.events():
            self.events_received += 1
            data: Any = event.data
            if event.type == "started":
                self.board, self.marks = [None] * 9, data["marks"]
                await self.move_if_my_turn(data["turn"])
            elif event.type == "placed":
                self.board[data["cell"]] = data["mark"]
                await self.move_if_my_turn(data["turn"])
            elif event.type == "game_over":
                self.results.append(self.outcome(data))
                if len(self.results) == self.games:
                    return
                await self.room.request("rematch")

    async def move_if_my_turn(self, turn: str | None) -> None:
        """Play a random free cell if it is this bot's turn."""
        if turn != self.me:
            return
        cell = self.rng.choice([i for i, mark in enumerate(self.board) if mark is None])
        await self.room.request("place", {"cell": cell})
        self.moves += 1

    def outcome(self, data: dict[str, Any]) -> str:
        """The winning mark, or "draw"."""
        if data.get("draw"):
            return "draw"
        return next(mark for mark, pid in self.marks.items() if pid == data["winner"])


async def run(args: argparse.Namespace) -> int:
    """Play `args.games` games, print the summary line, return the exit status."""
    rng = random.Random(args.seed)
    clients = [Client(args.url, reconnect_timeout_s=10) for _ in range(2)]
    players: list[Player] = []
    try:
        async with asyncio.timeout(args.timeout):
            for i, client in enumerate(clients):
                await client.login_guest(f"ttt-bot-{i}")
            # A private room: the bots play each other, not whoever waits in a public room.
            first = await clients[0].create("tictactoe", private=True, options={"rematch_s": 10})
            second = await clients[1].join(first.id)
            players = [Player(room, args.games, random.Random(rng.random())) for room in (first, second)]
            await asyncio.gather(*(p.play() for p in players))
            await asyncio.gather(*(p.room.leave() for p in players))
    except (ClientError, TimeoutError) as exc:
        print(f"tictactoe bots failed: {exc!r}", file=sys.stderr)
        return 1
    finally:
        for client in clients:
            with contextlib.suppress(ClientError):
                await client.aclose()

    first_player, second_player = players
    print(
        f"tictactoe: room={first_player.room.id} games={len(first_player.results)} "
        f"moves={first_player.moves + second_player.moves} "
        f"events_received={first_player.events_received + second_player.events_received} "
        f"results={','.join(first_player.results)}"
    )
    if len(first_player.results) != args.games:
        print(f"the room ended after {len(first_player.results)} of {args.games} games", file=sys.stderr)
        return 1
    if first_player.results != second_player.results:
        print(f"the bots disagree: {first_player.results} != {second_player.results}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    """Parse the command line and run the two bots."""
    parser = argparse.ArgumentParser(description="Two tic-tac-toe bots play each other.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--games", type=int, default=1, help="games to play (rematches after the first)")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=None, help="seed the bots' choices")
    args = parser.parse_args()
    if args.games < 1 or args.timeout <= 0:
        parser.error("--games and --timeout must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
