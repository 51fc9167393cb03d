"""Arena: a realtime game of tag for up to 8 players, in one file.

Run it with `roomwire run examples/arena/app.py` and watch bots play with
`python examples/arena/bot.py --url http://127.0.0.1:8000 --bots 4 --seconds 20`.

Rules: players move around an 800x600 arena. One player is "it"; when "it" comes within
TAG_RADIUS of another player, that player becomes "it" and the tagger scores a point. A round
lasts `round_s` seconds (room option, default 60); then the scoreboard is shown and the next
round starts after `pause_s` seconds.

The room is synced (`sync=True`): every client mirrors `room.state` (arena, players by id with
{id, name, color, x, y, score}, it, phase, round, ends_at, winners) and draws from it; a joining,
rejoining or resuming client gets it whole. Events only mark moments (sounds, logs, bots):
    moved         {id, x, y}
    tagged        {by, it, score}                                `score` is the tagger's new score
    round_started {round, it, ends_at}                           ends_at: room clock, epoch seconds
    round_over    {round, scores: {id: score}, winners: [id], next_round_at}

Messages: `move` {x, y}: where the player wants to be. The server clamps it to the arena and
refuses (RejectedError) a move farther than MAX_STEP from the player's position.
`sync` (no data) does nothing: once it is acknowledged, the client's mirror holds every change
made before it (and `roomwire bench` measures its round trip).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated, Any

import msgspec
from starlette.requests import Request

from roomwire import App, Player, RejectedError, Room

WIDTH = 800.0
HEIGHT = 600.0
MAX_STEP = 40.0  # farthest a player may move with one `move` message
TAG_RADIUS = 24.0
TAG_COOLDOWN_S = 1.0  # a new "it" cannot tag anyone (e.g. straight back) for this long
MAX_PLAYERS = 8
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]

app = App("arena")
# A disconnected player keeps their seat for 5 s (the reconnect grace) before they leave the game:
# long enough for a network blip, short enough that a vanished "it" does not stall the round.
arena = app.room("arena", max_players=MAX_PLAYERS, reconnect_grace_s=5.0, sync=True)

# A coordinate on the wire: any finite number in a sane range (NaN and infinities are refused by
# the bounds); the handler clamps it to the arena.
Coord = Annotated[float, msgspec.Meta(ge=-1e6, le=1e6)]


class Move(msgspec.Struct, forbid_unknown_fields=True):
    """Where the player wants to be, in arena units (the origin is the top-left corner)."""

    x: Coord
    y: Coord


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """Room options, sent by whoever creates the room (so they are validated like a message)."""

    round_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 60.0
    pause_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 5.0


# --- lifecycle --------------------------------------------------------------------------------


@arena.on_create
def create(room: Room, options: dict[str, Any]) -> None:
    """Start empty: the first round begins when the first player joins."""
    try:
        opts = msgspec.convert(options, Options)
    except msgspec.ValidationError as exc:
        raise RejectedError(f"invalid room options: {exc}") from exc
    room.state.update(
        arena={"width": WIDTH, "height": HEIGHT, "max_step": MAX_STEP, "tag_radius": TAG_RADIUS},
        round_s=opts.round_s,
        pause_s=opts.pause_s,
        phase="waiting",  # waiting (nobody here) -> playing <-> intermission
        round=0,
        ends_at=None,  # end of the current round, or start of the next one in intermission
        timer=None,  # id of the pending round timer, to cancel it when everybody left
        it=None,
        it_since=0.0,
        players={},  # id -> {id, name, color, x, y, score}
        winners=[],  # of the last round, shown in the intermission
    )


@arena.on_join
def join(room: Room, player: Player) -> None:
    """Spawn the player at a random spot with a free color; start a round if none is running."""
    state = room.state
    used = {p["color"] for p in state["players"].values()}
    me = {
        "id": player.id,
        "name": str(player.claims.get("name") or player.id)[:24],
        "color": next(c for c in COLORS if c not in used),  # max_players == len(COLORS)
        "x": round(random.uniform(0, WIDTH), 1),
        "y": round(random.uniform(0, HEIGHT), 1),
        "score": 0,
    }
    state["players"][player.id] = me
    if state["phase"] == "waiting":
        start_round(room)


@arena.on_leave
def leave(room: Room, player: Player, reason: str) -> None:
    """Forget the player; hand "it" to someone else, or stop the rounds when nobody is left."""
    state = room.state
    del state["players"][player.id]
    if not state["players"]:
        if state["timer"] is not None:
            room.cancel(state["timer"])
        state.update(phase="waiting", ends_at=None, timer=None, it=None)
    elif state["it"] == player.id:
        _make_it(room, _pick_it(room))


# --- messages ---------------------------------------------------------------------------------


@arena.message("move")
def move(room: Room, player: Player, msg: Move) -> None:
    """Move within the arena, at most MAX_STEP per message; then see who gets tagged."""
    me = room.state["players"][player.id]
    x = min(max(msg.x, 0.0), WIDTH)
    y = min(max(msg.y, 0.0), HEIGHT)
    step = math.dist((me["x"], me["y"]), (x, y))
    if step > MAX_STEP:
        raise RejectedError(f"too fast: {step:.1f} units in one move; the limit is {MAX_STEP}")
    me["x"], me["y"] = x, y
    room.broadcast("moved", id=player.id, x=x, y=y)
    _check_tag(room, player.id)


@arena.message("sync")
def sync(room: Room, player: Player, msg: None) -> None:
    """Nothing: its ack tells the client that its mirror holds every change made before it."""


def _check_tag(room: Room, mover: str) -> None:
    """Tag the player nearest to "it" if the move brought them within TAG_RADIUS."""
    state = room.state
    it = state["it"]
    if state["phase"] != "playing" or it is None or room.now < state["it_since"] + TAG_COOLDOWN_S:
        return
    players = state["players"]
    # Only the mover's distances changed: "it" chases everyone, anyone else can run into "it".
    candidates = [pid for pid in players if pid != it] if mover == it else [mover]
    hunter = players[it]
    if not room.players[it].connected:
        return
    in_reach = [
        (math.dist((hunter["x"], hunter["y"]), (players[pid]["x"], players[pid]["y"])), pid)
        for pid in candidates
        if room.players[pid].connected  # a disconnected player is out of the game until they return
    ]
    in_reach = [(d, pid) for d, pid in in_reach if d <= TAG_RADIUS]
    if not in_reach:
        return
    _, victim = min(in_reach)
    hunter["score"] += 1
    _make_it(room, victim)
    room.broadcast("tagged", by=it, it=victim, score=hunter["score"])


# --- rounds (timer callbacks are module-level functions: timers are stored by name) ----------------


def start_round(room: Room) -> None:
    """Reset the scores, choose who is "it" and run the round timer."""
    state = room.state
    if not state["players"]:
        state.update(phase="waiting", ends_at=None, timer=None)
        return
    for p in state["players"].values():
        p["score"] = 0
    state["round"] += 1
    state["phase"] = "playing"
    state["winners"] = []
    state["ends_at"] = room.now + state["round_s"]
    state["timer"] = room.after(state["round_s"], end_round)
    _make_it(room, _pick_it(room))
    room.broadcast("round_started", round=state["round"], it=state["it"], ends_at=state["ends_at"])


def end_round(room: Room) -> None:
    """Show the scoreboard, then start the next round after the pause."""
    state = room.state
    scores = {pid: p["score"] for pid, p in state["players"].items()}
    best = max(scores.values(), default=0)
    state["phase"] = "intermission"
    state["ends_at"] = room.now + state["pause_s"]
    state["timer"] = room.after(state["pause_s"], start_round)
    state["winners"] = sorted(pid for pid, s in scores.items() if s == best and best > 0)
    room.broadcast(
        "round_over",
        round=state["round"],
        scores=scores,
        winners=state["winners"],
        next_round_at=state["ends_at"],
    )


def _pick_it(room: Room) -> str:
    """A random player, preferring connected ones (there is at least one player)."""
    players = list(room.state["players"])
    connected = [pid for pid in players if room.players[pid].connected]
    chosen: str = random.choice(connected or players)
    return chosen


def _make_it(room: Room, player_id: str) -> None:
    room.state["it"] = player_id
    room.state["it_since"] = room.now


# --- lobby route ------------------------------------------------------------------------------


@app.route("/rules")
def rules(request: Request) -> dict[str, Any]:
    """The arena's constants, so a page can draw the arena and explain the game before joining."""
    return {
        "room_type": arena.name,
        "arena": {"width": WIDTH, "height": HEIGHT},
        "max_step": MAX_STEP,
        "tag_radius": TAG_RADIUS,
        "tag_cooldown_s": TAG_COOLDOWN_S,
        "max_players": MAX_PLAYERS,
        "options": msgspec.structs.asdict(Options()),
    }


# --- the browser page -------------------------------------------------------------------------

# Mounted last: the lobby and /rules above win over the page's catch-all "/" mount.
_HERE = Path(__file__).resolve().parent
_SDK_DIST = _HERE.parents[1] / "clients" / "js" / "dist"
if _SDK_DIST.is_dir():  # built by `cd clients/js && npm ci && npm run build`; the page says so if not
    app.static("/sdk", str(_SDK_DIST))
app.static("/", str(_HERE / "static"))
