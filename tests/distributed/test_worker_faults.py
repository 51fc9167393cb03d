"""Workers that die or stall under load: rooms move on, nothing is lost or applied twice.

One gateway and two worker processes (`roomwire serve --role ...`, lease TTL 1 s) on a fresh
namespace; 4 counter rooms with 2 Python SDK clients each, every client sending numbered adds
one after another. Figures are printed (run with `pytest -s` to see them).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable

from distributed_kit import (
    LEASE_TTL_S,
    Deployment,
    Load,
    RoomFigures,
    check_room,
    open_load,
    opened_backend,
    owners,
    wait_status,
)

from roomwire.backends.base import Backend

ROOMS, PLAYERS = 4, 2


async def _victim(backend: Backend, load: Load) -> tuple[str, list[str]]:
    """The worker running the most rooms, and its rooms (once every room shows as active)."""
    rooms = list(load.players)
    status = await wait_status(
        backend, lambda s: all(owners(s, rooms).values()), "every room active on a worker"
    )
    held = owners(status, rooms)
    victim, _ = Counter(held.values()).most_common(1)[0]
    assert victim is not None
    return victim, [room for room, worker in held.items() if worker == victim]


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


async def _kill_a_worker_under_load(deployment: Deployment) -> None:
    gateways, workers = await deployment.start(gateways=1, workers=2)
    async with opened_backend(deployment.backend_url) as backend:
        load = await open_load(ROOMS, PLAYERS, lambda _: gateways)
        try:
            load.start()
            await load.until_each_room_saw(10)
            victim_id, moved = await _victim(backend, load)
            victim = next(w for w in workers if w.name == victim_id)

            killed_at = time.monotonic()
            victim.kill()
            await load.until_each_room_saw(30)  # every room goes on, the moved ones too
            status = await wait_status(
                backend,
                lambda s: all(w not in (None, victim_id) for w in owners(s, moved).values()),
                "the killed worker's rooms active elsewhere",
            )
            await load.finish()
            figures = {room: check_room(room, players) for room, players in load.players.items()}
        finally:
            await load.aclose()
    _report(
        f"SIGKILL worker {victim_id} (held {len(moved)} of {ROOMS} rooms, lease TTL {LEASE_TTL_S} s)",
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
    await _kill_a_worker_under_load(deploy(redis_url))


async def test_killed_worker_rooms_move_on_on_a_redis_cluster(
    deploy: Callable[..., Deployment], redis_cluster: str
) -> None:
    await _kill_a_worker_under_load(deploy(redis_cluster))


async def test_stalled_worker_commits_are_refused_after_it_wakes(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    gateways, workers = await deployment.start(gateways=1, workers=2)
    async with opened_backend(deployment.backend_url) as backend:
        load = await open_load(ROOMS, PLAYERS, lambda _: gateways)
        try:
            load.start()
            await load.until_each_room_saw(10)
            victim_id, moved = await _victim(backend, load)
            victim = next(w for w in workers if w.name == victim_id)

            stopped_at = time.monotonic()
            victim.send(signal.SIGSTOP)
            # Past its lease: the other worker runs its rooms, and they made progress there.
            await wait_status(
                backend,
                lambda s: all(w not in (None, victim_id) for w in owners(s, moved).values()),
                "the stalled worker's rooms active elsewhere",
            )
            await load.until_each_room_saw(20)
            stalled_s = time.monotonic() - stopped_at
            victim.send(signal.SIGCONT)
            # Woken, it finds every room's epoch stale: a commit or a renewal is refused.
            for room in moved:
                await asyncio.to_thread(victim.wait_for_line, room)
            await load.until_each_room_saw(20)
            status = await wait_status(
                backend,
                lambda s: all(w not in (None, victim_id) for w in owners(s, moved).values()),
                "the moved rooms still on the other worker",
            )
            await load.finish()
            figures = {room: check_room(room, players) for room, players in load.players.items()}
        finally:
            await load.aclose()
    commits_refused = victim.count("is stale; dropping the room")
    renewals_refused = victim.count("lost the lease of room")
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
        if any(room in line for room in moved):
            print(f"    {victim_id}: {line.rstrip()}")
    assert commits_refused + renewals_refused >= len(moved)
    assert all(f.failed == 0 for f in figures.values())
