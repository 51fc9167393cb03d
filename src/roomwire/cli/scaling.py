"""The scaling policy of `roomwire up`: how many workers the load asks for (pure; no I/O).

The supervisor (cli/up.py) reads the load from the engine and calls `wanted` and `decide`; both
are plain functions of their arguments so the decision table is unit-tested without processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Load", "ScalePolicy", "decide", "wanted"]


@dataclass(frozen=True)
class Load:
    """What the engine says about the rooms, read once per supervisor tick."""

    awake: int  # live rooms not hibernating, plus hibernating ones with pending input
    waiting: int  # rooms no worker holds that should run (`Backend.rooms_to_run`): the backlog
    owned: int  # rooms the workers' reports list as running (`rw:worker:*`)


@dataclass(frozen=True)
class ScalePolicy:
    """Bounds and pace of scaling."""

    min_workers: int
    max_workers: int
    rooms_per_worker: int = 200  # awake rooms one worker process is expected to carry
    scale_down_after_s: float = 30.0  # the load must ask for fewer workers this long first

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError("need 0 <= min_workers <= max_workers")
        if self.max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if self.rooms_per_worker < 1:
            raise ValueError("rooms_per_worker must be at least 1")
        if self.scale_down_after_s < 0:
            raise ValueError("scale_down_after_s must not be negative")


def wanted(load: Load, policy: ScalePolicy) -> int:
    """Workers the load asks for, within [min_workers, max_workers]."""
    rooms = max(load.awake, load.owned)
    need = math.ceil(rooms / policy.rooms_per_worker)
    if load.waiting > 0:
        # A room waits for a worker (a message to a hibernated room, or a room whose worker died):
        # with none running that is a cold start, and it must happen now.
        need = max(need, 1)
    return min(policy.max_workers, max(policy.min_workers, need))


def decide(want: int, running: int, calm_s: float, policy: ScalePolicy) -> int:
    """How many workers to run now, given `wanted` and how long it has been below `running`.

    Up: at once, to what is wanted. Down: one worker at a time, and only after the load has asked
    for fewer than `running` for `scale_down_after_s` (a burst of joins does not make workers flap;
    a stopped worker's rooms move, which costs their players a lease hand-over).
    """
    want = min(policy.max_workers, max(policy.min_workers, want))
    if want >= running:
        return want
    if running > policy.max_workers:
        return policy.max_workers  # above the bound (the bound was lowered): no grace
    if calm_s >= policy.scale_down_after_s:
        return running - 1
    return running
