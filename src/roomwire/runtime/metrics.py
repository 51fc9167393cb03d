"""Process metrics counted in plain ints on the hot path; exported at scrape time (gateway.metrics).

prometheus-client's own Counter.inc() takes a lock and costs 0.5-2 us per call on the project's
machine (docs/operations.md has the numbers); an int increment costs ~50 ns. So the hot path only
adds to the fields here, and a custom Collector reads them when Prometheus scrapes.

Labels stay bounded: room type, code version, error code, close code, outcome. Never a room or a
player id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Seconds. Commit latency on an in-process engine is ~0.1 ms, on Redis ~0.3-2 ms; message to
# event adds the queue and handler time.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Histogram:
    """A fixed-bucket histogram: counts per bucket (not cumulative) and the sum of observations."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (a value on a bucket's bound falls in that bucket: le)."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as Prometheus wants them, +Inf last."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip((*(repr(b) for b in self.buckets), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class RoomTotals:
    """What the rooms of one type did on this worker: inputs, events, commits, handler time."""

    __slots__ = ("commits", "events", "handler_s", "inputs")

    def __init__(self) -> None:
        self.inputs = 0
        self.events = 0
        self.commits = 0
        self.handler_s = 0.0


class Metrics:
    """Everything one process counts; one instance per gateway or worker (see gateway.metrics)."""

    def __init__(self) -> None:
        # Per room type: totals of executors that stopped (running ones are read live).
        self.retired: dict[str, RoomTotals] = {}
        self.commit_seconds: dict[str, Histogram] = {}  # per room type
        self.message_seconds: dict[str, Histogram] = {}  # MessageInput.at -> its commit, per type
        self.rejected: Counter[tuple[str, str]] = Counter()  # (room type, code): handler/join refusals
        self.room_stops: Counter[tuple[str, str]] = Counter()  # (room type, outcome)
        self.room_claims: Counter[tuple[str, str]] = Counter()  # (room type, new|resumed)
        self.leases_lost = 0
        self.engine_errors: Counter[str] = Counter()  # by operation
        self.refused_frames: Counter[str] = Counter()  # by error code (rate_limited, too_large, ...)
        self.closes: Counter[int] = Counter()  # connections closed by the server, by close code
        self.connections_opened = 0

    def histogram(self, table: dict[str, Histogram], room_type: str) -> Histogram:
        """The histogram of `room_type` in `table`, made on first use."""
        hist = table.get(room_type)
        if hist is None:
            hist = table[room_type] = Histogram()
        return hist

    def totals(self, room_type: str) -> RoomTotals:
        """The retired totals of a room type, made on first use."""
        totals = self.retired.get(room_type)
        if totals is None:
            totals = self.retired[room_type] = RoomTotals()
        return totals


__all__ = ["LATENCY_BUCKETS", "Histogram", "Metrics", "RoomTotals"]
