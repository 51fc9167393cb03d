"""Relay rooms: every client message is ordered and relayed as an event; no game code on the server.

`app.relay("lobby-chat", max_players=...)` declares a room type whose messages of any type T are
committed as events of type T with data `{"from": sender, "data": <the message's data>}`, to
every player (the sender too: its own message comes back with its place in the room's order),
or, when the data is an object with a `"@to"` list of player ids, to those players and the
sender. Order, history, resume, receipts, size and rate limits and seats are those of every
room. With `host=True` the room keeps an authority, as Photon's master client: the connected
player who joined first; when it disconnects or leaves, the connected player who joined first
after it takes over, announced by a `@host` event (docs/protocol.md §16).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from roomwire.errors import RejectedError
from roomwire.runtime.room import framework_event
from roomwire.runtime.roomtype import MessageHandler, RoomType

if TYPE_CHECKING:
    from roomwire.runtime.room import Player, Room

TO_KEY = "@to"  # in a relayed message's data: the players it is for
HOST_EVENT = "@host"  # data: {"player": id or None}
HOST_KEY = "host"  # room.state["host"]: the current host's id (host election on)


def make_relay(room_type: RoomType, *, host: bool) -> None:
    """Turn `room_type` into a relay room type (and elect a host if `host`)."""
    room_type.fallback_handler = _handler_for
    if host:
        for hook in ("join", "reconnect"):
            room_type.add_hook(hook, _arrived)
        for hook in ("leave", "disconnect"):
            room_type.add_hook(hook, _departed)


def _handler_for(msg_type: str) -> MessageHandler:
    # Made per message, not cached: message types are chosen by clients (no unbounded cache).
    return MessageHandler(msg_type, functools.partial(_relay, msg_type), None, False)


def _relay(msg_type: str, room: Room, player: Player, msg: Any) -> None:
    """Commit one client message as an event for everyone, or for the players it names."""
    if msg_type.startswith("@"):
        raise RejectedError(f"message types starting with '@' are reserved, got {msg_type!r}")
    to: list[str] | None = None
    if isinstance(msg, dict) and TO_KEY in msg:
        names = msg[TO_KEY]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RejectedError(f"{TO_KEY!r} must be a list of player ids")
        if len(names) > len(room.players):
            raise RejectedError(f"{TO_KEY!r} names more players than the room has")
        to = [*dict.fromkeys([*names, player.id])]  # the sender learns the message's place too
    data = {"from": player.id, "data": msg}
    if to is None:
        room.broadcast(msg_type, data)
    else:
        room.send(list(to), msg_type, data)


def _arrived(room: Room, player: Player) -> None:
    """A player joined or reconnected: elect if needed, and tell them who the host is."""
    if not _elect(room):
        framework_event(room, HOST_EVENT, {"player": room.state.get(HOST_KEY)}, (player.id,))


def _departed(room: Room, player: Player, *_: Any) -> None:
    """A player left or disconnected: if it was the host, elect another."""
    _elect(room)


def _elect(room: Room) -> bool:
    """Keep `state["host"]` on a connected player; True if a change was announced to everyone."""
    current = room.state.get(HOST_KEY)
    seated = room.players.get(current) if isinstance(current, str) else None
    if seated is not None and seated.connected:
        return False  # the host stays while connected: a returning earlier player does not take over
    candidates = [p for p in room.players.values() if p.connected]
    new = min(candidates, key=lambda p: (p.joined_at, p.id)).id if candidates else None
    if new == current:
        return False
    room.state[HOST_KEY] = new
    framework_event(room, HOST_EVENT, {"player": new})
    return True
