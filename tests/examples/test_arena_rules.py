"""The arena example's rules, driven in-process with RoomTester (no sockets, a hand-moved clock)."""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

import pytest

from roomwire.errors import RejectedError, RoomFullError, ValidationError
from roomwire.testing import RoomTester, TestPlayer


@pytest.fixture
def game(arena_game: ModuleType) -> ModuleType:
    """The arena module (shorter name for the tests)."""
    return arena_game


def position(t: RoomTester, player: TestPlayer) -> tuple[float, float]:
    me = t.state["players"][player.id]
    return me["x"], me["y"]


def walk_to(t: RoomTester, game: ModuleType, player: TestPlayer, x: float, y: float) -> None:
    """Move `player` to (x, y) in legal steps (each a little under the arena's MAX_STEP)."""
    stride = game.MAX_STEP * 0.95
    for _ in range(100):
        px, py = position(t, player)
        distance = math.dist((px, py), (x, y))
        if distance == 0:
            return
        k = min(1.0, stride / distance)
        player.send("move", x=px + (x - px) * k, y=py + (y - py) * k)
    raise AssertionError(f"{player} did not reach ({x}, {y})")


def setup_pair(t: RoomTester, game: ModuleType) -> tuple[TestPlayer, TestPlayer]:
    """Two players: return (it, other), placed 300 units apart while the tag cooldown is running."""
    a, b = t.join("a"), t.join("b")
    it, other = (a, b) if t.state["it"] == "a" else (b, a)
    walk_to(t, game, it, 100, 100)
    walk_to(t, game, other, 400, 100)
    assert [e for e in t.events if e.type == "tagged"] == []  # the cooldown held during setup
    t.advance(game.TAG_COOLDOWN_S)
    return it, other


def test_every_player_mirrors_the_room_state(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    alice = t.join("a", {"name": "Alice"})
    bob = t.join("b")

    assert bob.synced["arena"] == {
        "width": game.WIDTH,
        "height": game.HEIGHT,
        "max_step": game.MAX_STEP,
        "tag_radius": game.TAG_RADIUS,
    }
    assert [p["name"] for p in bob.synced["players"].values()] == ["Alice", "b"]  # name claim, else the id
    assert alice.synced == bob.synced == t.state  # alice got bob's arrival as a patch
    assert [e.type for e in alice.events if not e.type.startswith("@")] == ["round_started"]
    players = t.state["players"].values()
    assert len({p["color"] for p in players}) == 2
    assert all(0 <= p["x"] <= game.WIDTH and 0 <= p["y"] <= game.HEIGHT for p in players)


def test_first_join_starts_a_round_with_someone_it(game: ModuleType) -> None:
    t = RoomTester(game.arena, options={"round_s": 30})
    assert t.state["phase"] == "waiting"
    alice = t.join("a")
    started = alice.events_of("round_started")
    assert started == [{"round": 1, "it": "a", "ends_at": t.now + 30}]
    assert t.state["phase"] == "playing"
    assert [e.type for e in alice.events if not e.type.startswith("@")] == ["round_started"]


def test_room_is_full_at_eight_players(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    for i in range(game.MAX_PLAYERS):
        t.join(f"p{i}")
    assert len({p["color"] for p in t.state["players"].values()}) == game.MAX_PLAYERS
    with pytest.raises(RoomFullError):
        t.join("one-too-many")


def test_move_is_clamped_to_the_arena(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    a = t.join("a")
    walk_to(t, game, a, 10, game.HEIGHT - 10)
    a.send("move", x=-20, y=game.HEIGHT + 20)
    assert position(t, a) == (0, game.HEIGHT)
    assert a.events_of("moved")[-1] == {"id": "a", "x": 0, "y": game.HEIGHT}


def test_move_farther_than_max_step_is_rejected_and_changes_nothing(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    a, b = t.join("a"), t.join("b")
    walk_to(t, game, a, 200, 200)
    before, seq = dict(t.state["players"]["a"]), t.room.seq

    with pytest.raises(RejectedError, match="too fast"):
        a.send("move", x=200 + game.MAX_STEP + 1, y=200)
    # A far target outside the arena is clamped first, then refused for the distance it still is.
    with pytest.raises(RejectedError):
        a.send("move", x=-1e5, y=-1e5)

    assert t.state["players"]["a"] == before
    assert t.room.seq == seq  # no event went out
    a.send("move", x=200 + game.MAX_STEP, y=200)  # exactly the limit is fine
    assert b.events_of("moved")[-1] == {"id": "a", "x": 200 + game.MAX_STEP, "y": 200}


@pytest.mark.parametrize(
    "data",
    [{"x": 1}, {"x": "1", "y": 2}, {"x": 1, "y": 2, "z": 3}, {"x": 1e9, "y": 0}, None, [1, 2]],
)
def test_malformed_move_is_refused_by_the_schema(game: ModuleType, data: Any) -> None:
    t = RoomTester(game.arena)
    a = t.join("a")
    before = dict(t.state["players"]["a"])
    with pytest.raises(ValidationError):
        a.send("move", data)
    assert t.state["players"]["a"] == before


def test_it_tags_a_player_in_reach_and_scores(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)

    walk_to(t, game, it, 400 - game.TAG_RADIUS - 10, 100)  # close, not yet in reach
    assert t.state["it"] == it.id
    it.send("move", x=400 - game.TAG_RADIUS, y=100)  # exactly the radius counts

    assert other.events_of("tagged") == [{"by": it.id, "it": other.id, "score": 1}]
    assert t.state["it"] == other.id
    assert t.state["players"][it.id]["score"] == 1
    assert t.state["players"][other.id]["score"] == 0


def test_running_into_it_gets_you_tagged(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    walk_to(t, game, other, 100 + game.TAG_RADIUS, 100)
    assert it.events_of("tagged") == [{"by": it.id, "it": other.id, "score": 1}]


def test_new_it_cannot_tag_back_during_the_cooldown(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    walk_to(t, game, it, 400 - game.TAG_RADIUS, 100)
    assert t.state["it"] == other.id

    other.send("move", x=390, y=100)  # right next to the old "it", within the cooldown
    assert t.state["it"] == other.id
    t.advance(game.TAG_COOLDOWN_S)
    other.send("move", x=389, y=100)
    assert t.state["it"] == it.id
    assert [e["by"] for e in it.events_of("tagged")] == [it.id, other.id]


def test_a_disconnected_player_cannot_be_tagged(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    other.disconnect()
    walk_to(t, game, it, 400, 100)
    assert t.state["it"] == it.id
    other.reconnect()
    it.send("move", x=399, y=100)
    assert t.state["it"] == other.id


def test_round_timer_ends_the_round_and_starts_the_next(game: ModuleType) -> None:
    t = RoomTester(game.arena, options={"round_s": 20, "pause_s": 3})
    it, other = setup_pair(t, game)
    walk_to(t, game, it, 400 - game.TAG_RADIUS, 100)  # it scores 1
    round_end = t.state["ends_at"]

    # Times stay multiples of 0.5 s so the float clock lands exactly on the timer's due time.
    t.advance(round_end - t.now - 0.5)
    assert other.events_of("round_over") == []
    t.advance(0.5)
    over = other.events_of("round_over")
    assert over == [
        {"round": 1, "scores": {"a": 0, "b": 0} | {it.id: 1}, "winners": [it.id], "next_round_at": t.now + 3}
    ]
    assert t.state["phase"] == "intermission"

    # No tagging between rounds.
    walk_to(t, game, it, 400, 100)
    assert t.state["players"][it.id]["score"] == 1

    t.advance(3)
    assert other.events_of("round_started")[-1] == {
        "round": 2,
        "it": t.state["it"],
        "ends_at": t.now + 20,
    }
    assert t.state["phase"] == "playing"
    assert all(p["score"] == 0 for p in t.state["players"].values())

    t.advance(20 + 3 + 20)  # two more round ends, one more start
    rounds = [(e.type, e.data["round"]) for e in t.events if e.type.startswith("round_")]
    assert rounds == [
        ("round_started", 1),
        ("round_over", 1),
        ("round_started", 2),
        ("round_over", 2),
        ("round_started", 3),
        ("round_over", 3),
    ]


def test_round_timers_are_module_level_functions(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    t.join("a")
    assert [timer.fn for timer in t.room.timers] == [f"{game.__name__}:end_round"]
    # After a recovery the runtime finds the callback again by that path.
    module, _, name = t.room.timers[0].fn.partition(":")
    assert getattr(importlib.import_module(module), name) is game.end_round


def test_a_player_who_comes_back_gets_the_whole_state_again(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    a, b = t.join("a"), t.join("b")
    walk_to(t, game, b, 10, 10)
    b.disconnect()
    walk_to(t, game, a, 500, 500)  # b's client misses these changes
    b.reconnect()  # within the grace: the seat is kept and no join hook runs
    assert b.synced == t.state
    assert {"id": "b", "x": 10, "y": 10}.items() <= b.synced["players"]["b"].items()
    before = len(b.events)
    b.send("sync")  # no effect, nothing sent: only its ack
    assert len(b.events) == before and b.synced == t.state


def test_when_it_leaves_another_player_becomes_it(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    third = t.join("c")
    it.leave()
    assert t.state["it"] in (other.id, third.id)
    assert it.id not in t.state["players"]
    assert other.synced == t.state


def test_it_who_disconnects_is_replaced_when_the_grace_runs_out(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    it.disconnect()
    assert t.state["it"] == it.id  # the seat is kept during the reconnect grace
    t.advance(game.arena.policy.reconnect_grace_s)
    assert t.state["it"] == other.id
    assert it.id not in other.synced["players"] and other.synced["it"] == other.id


def test_leaving_player_who_is_not_it_keeps_it(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    it, other = setup_pair(t, game)
    other.leave()
    assert t.state["it"] == it.id
    assert other.id not in it.synced["players"] and it.synced["it"] == it.id


def test_room_ends_when_everybody_left(game: ModuleType) -> None:
    t = RoomTester(game.arena)
    a, b = t.join("a"), t.join("b")
    a.leave()
    assert t.ended is None
    b.leave()
    assert t.ended == "empty"
    assert t.room.timers == []


@pytest.mark.parametrize("options", [{"round_s": 0}, {"pause_s": -1}, {"speed": 9}, {"round_s": "long"}])
def test_invalid_options_fail_the_room_creation(game: ModuleType, options: dict[str, Any]) -> None:
    t = RoomTester(game.arena, options=options)
    assert t.ended == "create failed"
