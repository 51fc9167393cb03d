"""The tic-tac-toe example's rules, driven in-process with RoomTester (no sockets)."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest

from roomwire.errors import (
    ForbiddenError,
    RejectedError,
    RoomFullError,
    UnknownMessageTypeError,
    ValidationError,
)
from roomwire.testing import RoomTester, TestPlayer


@pytest.fixture
def game(tictactoe_game: ModuleType) -> ModuleType:
    """The tic-tac-toe module (shorter name for the tests)."""
    return tictactoe_game


@pytest.fixture
def table(game: ModuleType) -> tuple[RoomTester, TestPlayer, TestPlayer]:
    """A started game: (tester, x, o)."""
    t = RoomTester(game.tictactoe, options={"rematch_s": 10})
    return t, t.join("x"), t.join("o")


def play(x: TestPlayer, o: TestPlayer, cells: list[int]) -> None:
    """Alternate moves, X first."""
    for i, cell in enumerate(cells):
        (x if i % 2 == 0 else o).send("place", cell=cell)


def test_first_player_is_x_second_is_o_and_x_starts(game: ModuleType) -> None:
    t = RoomTester(game.tictactoe)
    x = t.join("x", {"name": "Xena"})
    assert x.events_of("state")[0]["status"] == "waiting"
    o = t.join("o")
    assert x.events_of("joined") == [{"id": "o", "name": "o", "mark": "O"}]
    started = {"game": 1, "marks": {"X": "x", "O": "o"}, "turn": "x"}
    assert x.events_of("started") == o.events_of("started") == [started]
    assert o.events_of("state")[0]["names"] == {"x": "Xena", "o": "o"}


def test_move_before_the_opponent_joined_is_rejected(game: ModuleType) -> None:
    t = RoomTester(game.tictactoe)
    x = t.join("x")
    with pytest.raises(RejectedError, match="waiting for an opponent"):
        x.send("place", cell=4)
    assert t.state["board"] == [None] * 9


def test_placed_is_broadcast_and_the_turn_passes(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, o = table
    x.send("place", cell=4)
    assert o.events_of("placed") == [{"id": "x", "mark": "X", "cell": 4, "turn": "o"}]
    assert t.state["board"][4] == "X"
    assert t.state["turn"] == "o"


@pytest.mark.parametrize(
    ("moves", "who", "cell", "error"),
    [
        ([], "o", 0, "not your turn"),
        ([4], "x", 0, "not your turn"),
        ([4], "o", 4, "already taken"),
        ([0, 3, 1, 4, 2], "o", 5, "game is over"),
    ],
)
def test_illegal_move_is_rejected_and_changes_nothing(
    table: tuple[RoomTester, TestPlayer, TestPlayer], moves: list[int], who: str, cell: int, error: str
) -> None:
    t, x, o = table
    play(x, o, moves)
    before, seq = copy.deepcopy(t.state), t.room.seq
    with pytest.raises(RejectedError, match=error):
        (x if who == "x" else o).send("place", cell=cell)
    assert t.state == before
    assert t.room.seq == seq  # no event went out


@pytest.mark.parametrize("data", [{"cell": 9}, {"cell": -1}, {"cell": "4"}, {"cell": 1.5}, {}, None])
def test_out_of_range_or_malformed_cell_is_refused_by_the_schema(
    table: tuple[RoomTester, TestPlayer, TestPlayer], data: Any
) -> None:
    t, x, _ = table
    before = copy.deepcopy(t.state)
    with pytest.raises(ValidationError):
        x.send("place", data)
    assert t.state == before


def test_sync_sends_the_snapshot_again(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    _, x, o = table
    x.send("place", cell=4)
    o.disconnect()
    o.reconnect()  # within the grace: the seat is kept and no join hook runs
    o.send("sync")
    assert o.events_of("state")[-1] == {
        "board": [None] * 4 + ["X"] + [None] * 4,
        "marks": {"X": "x", "O": "o"},
        "names": {"x": "x", "o": "o"},
        "turn": "o",
        "status": "playing",
        "game": 1,
    }
    assert len(x.events_of("state")) == 1  # only the asking player gets it


def test_unknown_message_type_is_refused(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    _, x, _ = table
    with pytest.raises(UnknownMessageTypeError):
        x.send("resign")


@pytest.mark.parametrize(
    ("moves", "winner", "line"),
    [
        ([0, 3, 1, 4, 2], "x", [0, 1, 2]),  # row
        ([1, 0, 2, 3, 4, 6], "o", [0, 3, 6]),  # column
        ([0, 1, 4, 2, 8], "x", [0, 4, 8]),  # diagonal
        ([0, 2, 1, 4, 3, 6], "o", [2, 4, 6]),  # anti-diagonal
        ([0, 1, 2, 3, 5, 4, 7, 6, 8], "x", [2, 5, 8]),  # on the last free cell: a win, not a draw
    ],
)
def test_a_line_of_three_wins(
    table: tuple[RoomTester, TestPlayer, TestPlayer], moves: list[int], winner: str, line: list[int]
) -> None:
    t, x, o = table
    play(x, o, moves)
    assert x.events_of("game_over") == [
        {"winner": winner, "line": line, "reason": "line", "rematch_until": t.now + 10}
    ]
    assert x.events_of("placed")[-1]["turn"] is None
    assert t.state["status"] == "over"


def test_a_full_board_without_a_line_is_a_draw(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, o = table
    play(x, o, [0, 1, 2, 4, 3, 5, 7, 6, 8])
    # X O X / X O O / O X X
    assert o.events_of("game_over") == [{"draw": True, "reason": "draw", "rematch_until": t.now + 10}]


def test_room_ends_when_nobody_asks_for_a_rematch(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, o = table
    play(x, o, [0, 3, 1, 4, 2])
    assert [timer.fn.rsplit(":", 1)[1] for timer in t.room.timers] == ["close_room"]
    t.advance(9.5)
    assert t.ended is None
    o.send("rematch")  # one player is not enough
    t.advance(0.5)
    assert t.ended == "game over"


def test_rematch_when_both_ask_swaps_the_marks(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, o = table
    with pytest.raises(RejectedError, match="once the game is over"):
        x.send("rematch")
    play(x, o, [0, 3, 1, 4, 2])
    with pytest.raises(ValidationError):
        x.send("rematch", {"please": True})  # rematch carries no data
    x.send("rematch")
    x.send("rematch")  # asking twice changes nothing
    assert o.events_of("rematch_requested") == [{"id": "x"}]
    o.send("rematch")

    assert o.events_of("started")[-1] == {"game": 2, "marks": {"X": "o", "O": "x"}, "turn": "o"}
    assert t.state["board"] == [None] * 9
    assert t.room.timers == []  # the end-of-room timer was cancelled
    t.advance(60)
    assert t.ended is None
    o.send("place", cell=0)
    assert t.state["board"][0] == "X"


def test_leaving_during_a_game_forfeits_it(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, o = table
    x.send("place", cell=0)
    x.leave()
    assert o.events_of("left") == [{"id": "x", "reason": "left"}]
    assert o.events_of("game_over")[-1]["winner"] == "o"
    assert o.events_of("game_over")[-1]["reason"] == "forfeit"
    with pytest.raises(RejectedError, match="opponent has left"):
        o.send("rematch")
    t.advance(10)
    assert t.ended == "game over"


def test_a_third_player_cannot_join(table: tuple[RoomTester, TestPlayer, TestPlayer]) -> None:
    t, x, _ = table
    with pytest.raises(RoomFullError):
        t.join("z")
    x.leave()  # a seat is free, but the game has started
    with pytest.raises(ForbiddenError, match="already started"):
        t.join("z")


def test_room_ends_when_its_only_player_leaves(game: ModuleType) -> None:
    t = RoomTester(game.tictactoe)
    t.join("x").leave()
    assert t.ended == "empty"  # the room type's auto_dispose


def test_invalid_options_fail_the_room_creation(game: ModuleType) -> None:
    assert RoomTester(game.tictactoe, options={"rematch_s": -1}).ended == "create failed"
