"""The cards example's rules, in-process: turns, rounds, and hands no other player ever sees."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from roomwire import RejectedError
from roomwire.testing import RoomTester


def test_a_game_of_five_rounds_with_hidden_hands(cards_game: ModuleType) -> None:
    t = RoomTester(cards_game.cards)
    ann, bob = t.join("ann"), t.join("bob")
    with pytest.raises(RejectedError, match="not your turn"):
        bob.send("play", card=1)
    ann.send("start")
    with pytest.raises(RejectedError, match="started"):
        bob.send("start")
    for _ in range(5):
        for player in (ann, bob):
            view = player.synced
            assert view["turn"] == player.id and len(view["hand"]) == len(t.state["hands"][player.id])
            player.send("play", card=view["hand"][0])
    assert ann.synced["winner"] in ("ann", "bob") and sum(ann.synced["scores"].values()) == 5
    assert {k: v for k, v in ann.synced.items() if k != "hand"} == {
        k: v for k, v in bob.synced.items() if k != "hand"
    }
    # Only views reach clients: the state's "hands" (every player's cards) is in no frame of Bob's.
    assert '"hands"' not in json.dumps([e.data for e in bob.events])
