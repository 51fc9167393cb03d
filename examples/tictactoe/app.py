"""Tic-tac-toe: a turn-based game for two players whose handlers refuse illegal moves.

Run it with `roomwire run examples/tictactoe/app.py` and watch two bots play with
`python examples/tictactoe/bot.py --url http://127.0.0.1:8000`.

The first player to join plays X, the second O; X moves first. After a game, both players may
send `rematch` to play again with the marks swapped; if they do not both ask within `rematch_s`
seconds (room option, default 30), the room ends. A player who leaves during a game loses it.

Cells are numbered 0..8, row by row:   0 | 1 | 2
                                       3 | 4 | 5
                                       6 | 7 | 8
Events:
    state             to a joining player only: {board, marks, turn, status}
    joined            {id, name, mark}                    to the other player
    started           {game, marks: {X: id, O: id}, turn}
    placed            {id, mark, cell, turn}              turn: who plays next (None once over)
    game_over         {winner, line} or {draw: true}, plus {reason, rematch_until}
    rematch_requested {id}
    left              {id, reason}
Messages: `place` {cell}; `rematch` (no data); `sync` (no data): send me the `state` snapshot
again (e.g. after a page reload within the reconnect grace, when no join hook runs).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from roomwire import App, Player, RejectedError, Room

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]

app = App("tictactoe")
tictactoe = app.room("tictactoe", max_players=2)


class Place(msgspec.Struct, forbid_unknown_fields=True):
    """Put your mark in a cell (0..8); the schema refuses anything else before the handler runs."""

    cell: Annotated[int, msgspec.Meta(ge=0, le=8)]


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """Room options, validated like a message (any client may create a room)."""

    rematch_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0


# --- lifecycle --------------------------------------------------------------------------------


@tictactoe.on_create
def create(room: Room, options: dict[str, Any]) -> None:
    """An empty board waiting for two players."""
    try:
        opts = msgspec.convert(options, Options)
    except msgspec.ValidationError as exc:
        raise RejectedError(f"invalid room options: {exc}") from exc
    room.state.update(
        rematch_s=opts.rematch_s,
        status="waiting",  # waiting -> playing -> over -> (both ask for a rematch) playing ...
        game=0,
        board=[None] * 9,  # None, "X" or "O"
        marks={},  # "X"/"O" -> player id
        names={},  # player id -> display name
        turn=None,  # id of the player to move
        rematch=[],  # ids of the players who asked for a rematch
        timer=None,  # the pending end-of-room timer while waiting for a rematch
    )


@tictactoe.on_join
def join(room: Room, player: Player) -> None:
    """Seat the player with the free mark; the second player starts the game."""
    state = room.state
    if state["status"] != "waiting":
        raise RejectedError("this game has already started")
    mark = "O" if "X" in state["marks"] else "X"
    state["marks"][mark] = player.id
    state["names"][player.id] = str(player.claims.get("name") or player.id)[:24]
    room.send(player, "state", _snapshot(room))
    room.broadcast("joined", id=player.id, name=state["names"][player.id], mark=mark, exclude=player)
    if len(state["marks"]) == 2:
        _start_game(room)


@tictactoe.on_leave
def leave(room: Room, player: Player, reason: str) -> None:
    """Free the seat; leaving a game in progress forfeits it."""
    state = room.state
    mark = _mark_of(room, player.id)
    del state["marks"][mark]
    room.broadcast("left", id=player.id, reason=reason)
    if state["status"] == "playing":
        winner = next(iter(state["marks"].values()))
        _finish(room, winner=winner, reason="forfeit")
    elif state["status"] == "over" and player.id in state["rematch"]:
        state["rematch"].remove(player.id)


# --- messages ---------------------------------------------------------------------------------


@tictactoe.message("place")
def place(room: Room, player: Player, msg: Place) -> None:
    """Mark a free cell on your turn; then detect a win or a draw."""
    state = room.state
    if state["status"] != "playing":
        raise RejectedError("the game is over" if state["status"] == "over" else "waiting for an opponent")
    if state["turn"] != player.id:
        raise RejectedError("it is not your turn")
    board = state["board"]
    if board[msg.cell] is not None:
        raise RejectedError(f"cell {msg.cell} is already taken")
    mark = _mark_of(room, player.id)
    board[msg.cell] = mark
    line = next((line for line in LINES if all(board[i] == mark for i in line)), None)
    is_over = line is not None or all(board)
    state["turn"] = None if is_over else state["marks"][_other(mark)]
    room.broadcast("placed", id=player.id, mark=mark, cell=msg.cell, turn=state["turn"])
    if line is not None:
        _finish(room, winner=player.id, line=list(line))
    elif is_over:
        _finish(room, winner=None)


@tictactoe.message("rematch")
def rematch(room: Room, player: Player, msg: None) -> None:
    """Ask to play again; when both players asked, a new game starts with the marks swapped."""
    state = room.state
    if state["status"] != "over":
        raise RejectedError("a rematch can only be asked for once the game is over")
    if len(state["marks"]) < 2:
        raise RejectedError("your opponent has left")
    if player.id in state["rematch"]:
        return  # asking twice changes nothing
    state["rematch"].append(player.id)
    room.broadcast("rematch_requested", id=player.id)
    if len(state["rematch"]) == 2:
        room.cancel(state["timer"])
        marks = state["marks"]
        state["marks"] = {"X": marks["O"], "O": marks["X"]}
        _start_game(room)


@tictactoe.message("sync")
def sync(room: Room, player: Player, msg: None) -> None:
    """Send the `state` snapshot again to the player who asks."""
    room.send(player, "state", _snapshot(room))


# --- game -------------------------------------------------------------------------------------


def _start_game(room: Room) -> None:
    state = room.state
    state.update(
        status="playing",
        game=state["game"] + 1,
        board=[None] * 9,
        turn=state["marks"]["X"],
        rematch=[],
        timer=None,
    )
    room.broadcast("started", game=state["game"], marks=state["marks"], turn=state["turn"])


def _finish(room: Room, *, winner: str | None, line: list[int] | None = None, reason: str = "") -> None:
    """Announce the result, then give the players `rematch_s` seconds to ask for another game."""
    state = room.state
    state.update(status="over", turn=None, rematch=[])
    state["timer"] = room.after(state["rematch_s"], close_room)
    rematch_until = room.now + state["rematch_s"]
    if winner is None:
        room.broadcast("game_over", draw=True, reason=reason or "draw", rematch_until=rematch_until)
    else:
        room.broadcast(
            "game_over", winner=winner, line=line, reason=reason or "line", rematch_until=rematch_until
        )


def close_room(room: Room) -> None:
    """Timer: nobody asked for a rematch in time (module-level: timers are stored by name)."""
    room.end("game over")


def _mark_of(room: Room, player_id: str) -> str:
    mark: str = next(m for m, pid in room.state["marks"].items() if pid == player_id)
    return mark


def _other(mark: str) -> str:
    return "O" if mark == "X" else "X"


def _snapshot(room: Room) -> dict[str, Any]:
    state = room.state
    return {
        "board": state["board"],
        "marks": state["marks"],
        "names": state["names"],
        "turn": state["turn"],
        "status": state["status"],
        "game": state["game"],
    }
