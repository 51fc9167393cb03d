"""Workers that die or stall under load: rooms move on, nothing is lost or applied twice.

One gateway and two worker processes (`roomwire serve --role ...`, lease TTL 1 s) on a fresh
namespace; 4 counter rooms with 2 Python SDK clients each, every client sending numbered adds
one after another. Figures are printed (run with `pytest -s` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from distributed_kit import (
    LEASE_TTL_S,
    REQUEST_TIMEOUT_S,
    Deployment,
    Load,
    Process,
    RoomFigures,
    check_room,
    open_load,
    opened_backend,
    owners,
    wait_status,
)

from roomwire.backends.base import Backend
from roomwire.cli.status import Status

ROOMS, PLAYERS = 4, 2
SLOW_S = 0.6  # how long the `slow` handler blocks its worker: the window to SIGSTOP it in
# What a worker logs when the engine refuses its stale epoch (runtime/executor.py, worker.py).
COMMIT_REFUSED = "is stale; dropping the room"
RENEWAL_REFUSED = "lost the lease of room"


def _refused(line: str, room: str) -> bool:
    return room in line and (COMMIT_REFUSED in line or RENEWAL_REFUSED in line)


@dataclass
class Scene:
    """A running deployment under load, and the worker chosen to suffer the fault."""

    backend: Backend
    load: Load
    victim: Process
    moved: list[str]  # the rooms the victim runs

    async def moved_elsewhere(self, what: str) -> Status:
        """Wait until another worker runs every one of the victim's rooms."""
        victim = self.victim.name
        return await wait_status(
            self.backend, lambda s: all(w not in (None, victim) for w in owners(s, self.moved).values()), what
        )

    def check(self) -> dict[str, RoomFigures]:
        """check_room for every room."""
        return {room: check_room(room, players) for room, players in self.load.players.items()}


@contextlib.asynccontextmanager
async def _under_load(deployment: Deployment) -> AsyncIterator[Scene]:
    """One gateway, two workers, ROOMS rooms of PLAYERS clients sending; the victim is the worker
    running the most rooms (read from `roomwire status`'s worker reports)."""
    gateways, workers = await deployment.start(gateways=1, workers=2)
    async with opened_backend(deployment.backend_url) as backend:
        load = await open_load(ROOMS, PLAYERS, lambda _: gateways)
        try:
            load.start()
            await load.until_each_room_saw(10)
            rooms = list(load.players)
            status = await wait_status(
                backend, lambda s: all(owners(s, rooms).values()), "every room active on a worker"
            )
            held = owners(status, rooms)
            victim, _ = Counter(held.values()).most_common(1)[0]
            yield Scene(
                backend,
                load,
                next(w for w in workers if w.name == victim),
                [room for room, worker in held.items() if worker == victim],
            )
        finally:
            await load.aclose()


def _report(title: str, figures: dict[str, RoomFigures], moved: list[str], fault_at: float) -> None:
    print(f"\n{title}")
    for room, f in figures.items():
        where = "moved" if room in moved else "stayed"
        print(
            f"  room {room} ({where}): counter {f.counter} = acked {f.acked} + applied-after-error "
            f"{f.applied_failed}; errors {f.failed}; ticks {f.ticks}; longest silence "
            f"{f.longest_silence_s:.3f} s, ended {f.silence_ended_at - fault_at:+.3f} s after the fault"
        )
    total = sum(f.counter for f in figures.values())
    print(f"  adds applied {total}, lost 0, applied twice 0 (checked per client and per room)")


async def _kill_a_worker_under_load(deployment: Deployment, engine: str) -> None:
    async with _under_load(deployment) as scene:
        killed_at = time.monotonic()
        scene.victim.kill()
        await scene.load.until_each_room_saw(30)  # every room goes on, the moved ones too
        status = await scene.moved_elsewhere("the killed worker's rooms active elsewhere")
        await scene.load.finish()
        figures = scene.check()
    victim, moved = scene.victim.name, scene.moved
    _report(
        f"SIGKILL worker {victim} on {engine} (ran {len(moved)} of {ROOMS} rooms, lease TTL {LEASE_TTL_S} s)",
        figures,
        moved,
        killed_at,
    )
    print(f"  rooms now on: {owners(status, moved)}")
    assert all(f.failed == 0 for f in figures.values()), "no client request may fail through a worker kill"
    recovery = [figures[room].silence_ended_at - killed_at for room in moved]
    print(f"  time until the rooms moved on: max {max(recovery):.3f} s, min {min(recovery):.3f} s")


async def test_killed_worker_rooms_move_on_without_loss_or_duplicates(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    await _kill_a_worker_under_load(deploy(redis_url), "Redis")


async def test_killed_worker_rooms_move_on_on_a_redis_cluster(
    deploy: Callable[..., Deployment], redis_cluster: str
) -> None:
    await _kill_a_worker_under_load(deploy(redis_cluster), "a 3-node Redis Cluster")


async def test_stalled_worker_commits_are_refused_after_it_wakes(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    async with _under_load(deploy(redis_url)) as scene:
        victim = scene.victim
        # Stop the worker in the middle of a step of one of its rooms: its commit comes later.
        stuck = scene.moved[0]
        player = scene.load.players[stuck][0]
        slow = asyncio.create_task(
            player.room.request("slow", {"c": player.name, "k": 0, "s": SLOW_S}, timeout=REQUEST_TIMEOUT_S)
        )
        await asyncio.to_thread(victim.wait_for_line, f"slow handler running in room {stuck}")
        stopped_at = time.monotonic()
        victim.send(signal.SIGSTOP)
        # Past its lease: the other worker runs its rooms, and they made progress there.
        await scene.moved_elsewhere("the stalled worker's rooms active elsewhere")
        await scene.load.until_each_room_saw(20)
        stalled_s = time.monotonic() - stopped_at
        victim.send(signal.SIGCONT)
        # Woken, it finishes the step and commits: refused (stale epoch). Its other rooms are
        # dropped on a refused commit or a refused renewal, whichever comes first.
        for room in scene.moved:
            await asyncio.to_thread(victim.wait_for_line, lambda line, r=room: _refused(line, r))
        await slow
        player.acked.append(0)  # the slow add, applied once (by the other worker)
        await scene.load.until_each_room_saw(20)
        status = await scene.moved_elsewhere("the moved rooms still on the other worker")
        await scene.load.finish()
        figures = scene.check()
    victim_id, moved = victim.name, scene.moved
    commits_refused = victim.count(COMMIT_REFUSED)
    renewals_refused = victim.count(RENEWAL_REFUSED)
    _report(
        f"SIGSTOP worker {victim_id} for {stalled_s:.2f} s (held {len(moved)} of {ROOMS} rooms, "
        f"lease TTL {LEASE_TTL_S} s), then SIGCONT",
        figures,
        moved,
        stopped_at,
    )
    print(
        f"  after SIGCONT, worker {victim_id}: commits refused (StaleLeaseError) {commits_refused}, "
        f"renewals refused {renewals_refused}; rooms now on: {owners(status, moved)}"
    )
    for line in victim.lines:
        if any(_refused(line, room) for room in moved):
            print(f"    {victim_id}: {line.rstrip()}")
    assert any(COMMIT_REFUSED in line and stuck in line for line in victim.lines), (
        f"the stalled step's commit in room {stuck} was not refused:\n{victim.output()}"
    )
    assert all(f.failed == 0 for f in figures.values())
