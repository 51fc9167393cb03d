"""Gateway presence: each gateway keeps a key alive; workers disconnect the players of a dead one.

A player's connection lives on one gateway. When that process dies, nobody closes the socket
politely, so no DisconnectInput is appended: the room would count the player as connected for
ever (no reconnect grace, no leave, no hibernation). Each join's `ref` therefore starts with the
id of the gateway that made it (the room keeps it as the player's session), each gateway renews
`gateway_key(id)` with a TTL, and a worker that finds the key of a connected player's gateway
missing on two checks in a row appends the disconnect itself.
"""

from __future__ import annotations

import secrets

DEFAULT_PRESENCE_TTL_S = 10.0  # a gateway renews its key every third of this
PRESENCE_PREFIX = "rw:gateway:"


def gateway_key(gateway_id: str) -> str:
    """The key-value entry a live gateway keeps renewed."""
    return PRESENCE_PREFIX + gateway_id


def new_gateway_id() -> str:
    """A random gateway id (no '.': it ends at the first dot of a session)."""
    return f"g{secrets.token_hex(6)}"


def new_session(gateway_id: str) -> str:
    """A join ref naming the gateway that made it."""
    return f"{gateway_id}.{secrets.token_hex(8)}"


def session_gateway(session: str) -> str | None:
    """The gateway id in a session made by `new_session`, or None (older or test refs)."""
    gateway_id, dot, _ = session.partition(".")
    return gateway_id if dot and gateway_id else None
