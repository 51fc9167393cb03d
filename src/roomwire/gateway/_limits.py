"""Per-identity and per-address bounds of one gateway: rooms created, connections held, log lines.

Promise 7: one player (or one address) must not be able to take a server's rooms or sockets.
The counts are per gateway process, not shared across a cluster: behind N gateways a player
can reach N times each bound, which still bounds what one client costs each process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from roomwire.errors import RateLimitedError

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
