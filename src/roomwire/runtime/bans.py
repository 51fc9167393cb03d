"""Bans: where a room tells the lobby that a player may not get a seat in it (room.kick(ban=True)).

The room's snapshot is the authority (a banned player's join is refused `forbidden`); the key
written here only lets the lobby refuse the seat up front. The executor writes it after the
commit that banned the player and deletes it when the room ends; its ttl bounds what a room that
ends without cleaning up (a crash at that moment) can leave behind.
"""

from __future__ import annotations

BAN_KEY_TTL_S = 7 * 24 * 3600.0


def ban_key(room_id: str, player: str) -> str:
    """The key-value key that marks `player` as banned from `room_id`."""
    return f"ban:{room_id}:{player}"
