"""High card with hidden hands: a synced room whose view keeps every hand secret.

    roomwire run examples/cards/app.py
    python examples/cards/bot.py --url http://127.0.0.1:8000 --bots 3

Players join, anyone sends `start` (2 to 4 players), each gets five cards from 1 to 13. In turn
order every player plays one card of their hand; when all have played, the highest card takes
the round (ties go to the first who played it). After five rounds the most rounds wins.

The server sends no game events at all: each client renders `room.synced`, its view of the state
(its own hand, how many cards the others hold, the table, the scores), kept up to date by roomwire
(`@state` on join, `@patch` after every move; docs/protocol.md §15).
"""

from __future__ import annotations

import random
from typing import Any

import msgspec

from roomwire import App, Player, RejectedError, Room

HAND = 5

app = App("cards")
cards = app.room("cards", max_players=4, sync=True)


class Play(msgspec.Struct):
    """Play one card of your hand."""

    card: int


@cards.on_create
def create(room: Room, options: dict[str, Any]) -> None:
    """An empty table: players gather until someone starts."""
    room.state.update(
        {"players": [], "hands": {}, "table": [], "scores": {}, "turn": None, "round": 0, "winner": None}
    )


@cards.on_join
def join(room: Room, player: Player) -> None:
    """Seat the player (a late joiner watches: no hand)."""
    if player.id not in room.state["players"]:
        room.state["players"].append(player.id)


@cards.message("start")
def start(room: Room, player: Player, msg: Any) -> None:
    """Deal five cards to every seated player and give the first one the turn."""
    state = room.state
    if state["round"]:
        raise RejectedError("the game has started")
    if len(state["players"]) < 2:
        raise RejectedError("two players are needed")
    deck = random.sample([card for card in range(1, 14) for _ in range(4)], HAND * len(state["players"]))
    for i, pid in enumerate(state["players"]):
        state["hands"][pid] = sorted(deck[i * HAND : (i + 1) * HAND])
        state["scores"][pid] = 0
    state["round"], state["turn"] = 1, state["players"][0]


@cards.message("play")
def play(room: Room, player: Player, msg: Play) -> None:
    """Put a card of your hand on the table; the last play of a round decides it."""
    state = room.state
    if state["turn"] != player.id:
        raise RejectedError("not your turn")
    hand = state["hands"][player.id]
    if msg.card not in hand:
        raise RejectedError(f"{msg.card} is not in your hand")
    hand.remove(msg.card)
    state["table"].append([player.id, msg.card])
    order = [pid for pid in state["players"] if pid in state["hands"]]
    if len(state["table"]) < len(order):
        state["turn"] = order[order.index(player.id) + 1]
        return
    best = max(card for _, card in state["table"])
    taker = next(pid for pid, card in state["table"] if card == best)
    state["scores"][taker] += 1
    state["table"] = []
    if state["round"] == HAND:
        top = max(state["scores"].values())
        state["winner"] = next(pid for pid in order if state["scores"][pid] == top)
        state["turn"] = None
    else:
        state["round"] += 1
        state["turn"] = order[0]


@cards.view
def view(room: Room, player: Player) -> dict[str, Any]:
    """What one player sees: everything but the other hands, of which only the size."""
    state = room.state
    return {
        "players": state["players"],
        "hand": state["hands"].get(player.id, []),
        "cards_left": {pid: len(hand) for pid, hand in state["hands"].items()},
        "table": state["table"],
        "scores": state["scores"],
        "turn": state["turn"],
        "round": state["round"],
        "winner": state["winner"],
    }
