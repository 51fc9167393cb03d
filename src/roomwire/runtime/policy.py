"""RoomPolicy: the queue policy of a room type, declared next to its handlers."""

from __future__ import annotations

import msgspec

from roomwire.errors import SetupError


class RoomPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Limits and lifetimes of one room type; every field has a default that suits a small game.

    max_players: players (seated or reserved) a room admits.
    history: events kept per room for resume after a reconnect.
    max_message_bytes: largest `msg` frame accepted for this room type.
    rate_limit: messages per second per player (bursts up to 2 s worth); None disables it.
    idle_timeout_s: a room with nobody connected and no pending timer hibernates after this.
    max_lifetime_s: the room ends after this long; None: no limit.
    tick_rate_hz: calls the tick handler this often while a player is connected; None: no tick.
    reconnect_grace_s: a disconnected player keeps their seat this long before `on_leave`.
    auto_dispose: end the room when its last player leaves (or never shows up).
    seat_ttl_s: how long a seat reservation from the lobby is valid before it is used.
    rejoin_ttl_s: how long a `joined.rejoin` seat is valid, and how long the room remembers a
        removed player's message ids (so a resend after a rejoin is not applied twice).
    step_timeout_s: longest an async handler, hook or timer may await in one step before the step
        is rolled back and its input refused with `step_timeout`; None: no bound. A handler that blocks
        the thread (sync code that never returns) cannot be interrupted in-process.
    """

    max_players: int = 16
    history: int = 1024
    max_message_bytes: int = 16 * 1024
    rate_limit: float | None = 30.0
    idle_timeout_s: float = 30.0
    max_lifetime_s: float | None = None
    tick_rate_hz: float | None = None
    reconnect_grace_s: float = 20.0
    auto_dispose: bool = True
    seat_ttl_s: float = 60.0
    rejoin_ttl_s: float = 6 * 3600.0
    step_timeout_s: float | None = 5.0

    def __post_init__(self) -> None:
        if self.max_players < 1:
            raise SetupError(f"max_players must be at least 1, got {self.max_players}")
        if self.history < 0:
            raise SetupError(f"history must be 0 or more events, got {self.history}")
        if self.max_message_bytes < 64:
            raise SetupError(f"max_message_bytes must be at least 64, got {self.max_message_bytes}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise SetupError(f"rate_limit must be positive or None, got {self.rate_limit}")
        if self.tick_rate_hz is not None and not 0 < self.tick_rate_hz <= 120:
            raise SetupError(f"tick_rate_hz must be in (0, 120] or None, got {self.tick_rate_hz}")
        for name in ("idle_timeout_s", "reconnect_grace_s", "seat_ttl_s"):
            if getattr(self, name) < 0:
                raise SetupError(f"{name} must not be negative")
        if self.rejoin_ttl_s <= 0:
            raise SetupError(f"rejoin_ttl_s must be positive, got {self.rejoin_ttl_s}")
        if self.max_lifetime_s is not None and self.max_lifetime_s <= 0:
            raise SetupError(f"max_lifetime_s must be positive or None, got {self.max_lifetime_s}")
        if self.step_timeout_s is not None and not 0 < self.step_timeout_s < float("inf"):
            raise SetupError(f"step_timeout_s must be positive seconds or None, got {self.step_timeout_s}")
