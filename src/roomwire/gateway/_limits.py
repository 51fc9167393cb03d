"""Per-identity and per-address bounds of one gateway: rooms created, joins, connections, log lines.

Promise 7: one player (or one address) must not be able to take a server's rooms or sockets.
The counts are per gateway process, not shared across a cluster: behind N gateways a player
can reach N times each bound, which still bounds what one client costs each process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from roomwire.errors import RateLimitedError
from roomwire.protocol.codes import CloseCode

if TYPE_CHECKING:  # connection.py imports the WebSocket protocol, which imports LogBudget from here
    from roomwire.gateway.connection import Connection

WINDOW_S = 60.0


class CreationLimiter:
    """Rooms created per player per minute: a token bucket of `per_min` tokens per player.

    Memory: one small entry per player who created a room in the last minute; older entries are
    swept at most once a minute.
    """

    def __init__(self, per_min: int | None) -> None:
        self.per_min = per_min
        self._buckets: dict[str, tuple[float, float]] = {}  # player -> (tokens, stamp)
        self._swept = time.monotonic()

    def take(self, player: str) -> None:
        """Count one creation by `player`; raises RateLimitedError (with retry_after_s) when over."""
        per_min = self.per_min
        if per_min is None:
            return
        now = time.monotonic()
        rate = per_min / WINDOW_S
        tokens, stamp = self._buckets.get(player, (float(per_min), now))
        tokens = min(float(per_min), tokens + (now - stamp) * rate)
        if tokens < 1:
            raise RateLimitedError(
                f"over the limit of {per_min} rooms created per minute", retry_after_s=(1 - tokens) / rate
            )
        self._buckets[player] = (tokens - 1, now)
        if now - self._swept > WINDOW_S:
            self._swept = now
            # A bucket untouched for a minute is full again: the same as no entry.
            self._buckets = {p: b for p, b in self._buckets.items() if now - b[1] < WINDOW_S}


class ConnectionCounts:
    """Open connections per key (a player id or a client address), bounded by `limit`."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._counts: Counter[str] = Counter()

    def can_add(self, key: str) -> bool:
        """True while `key` holds fewer than the limit."""
        return self.limit is None or self._counts[key] < self.limit

    def add(self, key: str) -> None:
        """Count one more connection of `key`."""
        self._counts[key] += 1

    def remove(self, key: str) -> None:
        """Count one connection of `key` less."""
        left = self._counts[key] - 1
        if left > 0:
            self._counts[key] = left
        else:
            del self._counts[key]


class LogBudget:
    """At most `lines` log lines per `period_s` for one kind of client misbehaviour.

    A client can repeat bad input as fast as it can send it; the log must not grow as fast.
    Lines over the budget are counted and reported in the first line of the next period.
    """

    def __init__(self, logger: logging.Logger, lines: int = 10, period_s: float = 10.0) -> None:
        self.logger = logger
        self.lines = lines
        self.period_s = period_s
        self._start = -period_s
        self._used = 0
        self._dropped = 0

    def info(self, message: str, *args: object) -> None:
        """Log one INFO line if the budget allows, else count it."""
        now = time.monotonic()
        if now - self._start >= self.period_s:
            if self._dropped:
                self.logger.info("(%d more like the lines above were not logged)", self._dropped)
            self._start, self._used, self._dropped = now, 0, 0
        if self._used < self.lines:
            self._used += 1
            self.logger.info(message, *args)
        else:
            self._dropped += 1


class TokenBucket(Protocol):
    """What ClientBounds needs of a rate limiter (the gateway's `Limiter`)."""

    rate: float
    burst: float
    strikes: int

    def take(self) -> bool:
        """True when one more action is allowed now."""
        ...


class ClientBounds:
    """One gateway's bounds on its clients: joins and leaves per connection, connections per
    player, connections per client address (see GatewaySettings)."""

    def __init__(
        self,
        new_limiter: Callable[[], TokenBucket],
        *,
        max_per_player: int | None,
        max_per_address: int | None,
    ) -> None:
        self._new_limiter = new_limiter
        self.max_per_player = max_per_player
        self._per_address = ConnectionCounts(max_per_address)
        self._join_limiters: dict[int, TokenBucket] = {}
        self._player_conns: dict[str, dict[int, Connection]] = {}
        self._conn_players: dict[int, set[str]] = {}

    def can_open(self, address: str) -> bool:
        """True while `address` holds fewer connections than its bound."""
        return self._per_address.can_add(address)

    def opened(self, address: str) -> None:
        """Count a connection accepted from `address`."""
        self._per_address.add(address)

    def closed(self, conn: Connection, address: str) -> None:
        """Forget everything counted for a connection that ended."""
        self._per_address.remove(address)
        self._join_limiters.pop(conn.id, None)
        for player in self._conn_players.pop(conn.id, set()):
            self._forget(conn.id, player)

    def check_join_rate(self, conn: Connection) -> None:
        """Count a join or leave (each runs a hook and broadcasts); raises RateLimitedError over
        the rate, and closes the connection (4004) far over it."""
        limiter = self._join_limiters.get(conn.id)
        if limiter is None:
            limiter = self._join_limiters[conn.id] = self._new_limiter()
        if not limiter.take():
            if limiter.strikes > 4 * limiter.burst:
                conn.close(CloseCode.FLOODING, "flooding: far over the rate limit")
            raise RateLimitedError(
                f"over the limit of {limiter.rate:g} joins and leaves per second on one connection"
            )

    def check_player(self, conn: Connection, player: str) -> None:
        """Count `conn` for `player` (a join with their seat); raises RateLimitedError when the
        player already has the bound's number of other connections in rooms here.

        A connection counts from its first join as the player until it closes, or until it is
        no longer in a room as them (a reconnecting client's old connection, replaced in its
        rooms, may linger until its heartbeat runs out). A connection still joining does not
        hold a room yet: the joins in flight at one moment may pass the bound, never for good.
        """
        conns = self._player_conns.get(player)
        if conns is not None and conn.id in conns:
            return
        limit = self.max_per_player
        if limit is not None and conns is not None and len(conns) >= limit:
            for old in [c for c in conns.values() if not _holds(c, player)]:
                self._forget(old.id, player)
                self._conn_players.get(old.id, set()).discard(player)
            conns = self._player_conns.get(player)
            if conns is not None and len(conns) >= limit:
                raise RateLimitedError(
                    f"player {player!r} already has {limit} connections to this server; close one first"
                )
        self._player_conns.setdefault(player, {})[conn.id] = conn
        self._conn_players.setdefault(conn.id, set()).add(player)

    def _forget(self, conn_id: int, player: str) -> None:
        conns = self._player_conns.get(player)
        if conns is not None:
            conns.pop(conn_id, None)
            if not conns:
                del self._player_conns[player]


def _holds(conn: Connection, player: str) -> bool:
    return not conn.is_closed and any(member.player == player for member in conn.rooms.values())
