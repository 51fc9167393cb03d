"""A gateway killed, and the Redis server itself killed and restarted, under load.

Gateways and workers are `roomwire serve` processes; clients are Python SDK clients sending
numbered adds (see distributed_kit). Figures are printed (run with `pytest -s` to see them).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from distributed_kit import WAIT_S, Deployment, RoomFigures, check_room, open_load, opened_backend

from roomwire_client import Client

ROOMS, PLAYERS = 4, 2
OUTAGE_S = 1.0  # how long the Redis server stays down


def _print_rooms(figures: dict[str, RoomFigures], fault_at: float) -> None:
    for room, f in figures.items():
        print(
            f"  room {room}: counter {f.counter} = acked {f.acked} + applied-after-error {f.applied_failed}; "
            f"errors {f.failed}; ticks {f.ticks}; longest silence {f.longest_silence_s:.3f} s, "
            f"ended {f.silence_ended_at - fault_at:+.3f} s after the fault"
        )


async def test_clients_resume_on_the_other_gateway_without_gap_or_duplicate(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    (g1, g2), _ = await deployment.start(gateways=2, workers=1)
    load = await open_load(ROOMS, PLAYERS, lambda _: [g1, g2])
    try:
        assert all(c.connection.endpoints.current == g1 for c in load.clients)
        load.start()
        await load.until_each_room_saw(10)

        killed_at = time.monotonic()
        deployment.gateway("g1").kill()
        await load.until_each_room_saw(30)
        resumed_on = Counter(c.connection.endpoints.current for c in load.clients)
        await load.finish()
        figures = {room: check_room(room, players) for room, players in load.players.items()}
    finally:
        await load.aclose()
    print(f"\nSIGKILL gateway g1 with {len(load.clients)} clients on it ({ROOMS} rooms x {PLAYERS})")
    _print_rooms(figures, killed_at)
    print(f"  clients now on: {dict(resumed_on)}; every client's events gapless, no duplicate, same order")
    assert resumed_on == {g2: len(load.clients)}
    assert all(f.failed == 0 for f in figures.values()), "no request may fail through a gateway kill"


async def test_the_room_disconnects_the_players_of_a_killed_gateway_who_do_not_come_back(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    (g1, g2), _ = await deployment.start(gateways=2, workers=1)
    lost = Client([g1], reconnect=False, connect_timeout_s=3.0)  # a player who never comes back
    stays = Client([g2], connect_timeout_s=3.0)
    try:
        await lost.login_guest()
        await stays.login_guest()
        room = await lost.create("counter")
        watching = await stays.join(room.id)

        killed_at = time.monotonic()
        deployment.gateway("g1").kill()  # SIGKILL: no close frame, no disconnect appended by g1
        async with asyncio.timeout(WAIT_S):
            async for event in watching.events():
                if event.type == "disconnected":
                    break
        noticed_s = time.monotonic() - killed_at
    finally:
        await lost.aclose()
        await stays.aclose()
    print(f"\nSIGKILL gateway g1: its player disconnected by the room after {noticed_s:.2f} s (TTL 3 s)")
    assert event.data == {"player": room.player}


async def test_redis_restart_keeps_what_was_committed(
    aof_redis: Any, deploy: Callable[..., Deployment]
) -> None:
    # aof_redis first: fixtures tear down in reverse, so the processes stop before the server.
    deployment = deploy(f"redis://127.0.0.1:{aof_redis.port}/0")
    (gateway,), _ = await deployment.start(gateways=1, workers=1)
    async with opened_backend(deployment.backend_url) as backend:
        load = await open_load(2, PLAYERS, lambda _: [gateway])
        try:
            load.start()
            await load.until_each_room_saw(10)
            before = {room: max(p.seen[-1].seq for p in players) for room, players in load.players.items()}

            killed_at = time.monotonic()
            aof_redis.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(aof_redis.process.wait)
            await asyncio.sleep(OUTAGE_S)  # the outage itself: nothing to wait for
            await asyncio.to_thread(aof_redis.stop)  # reaps the log thread of the killed server
            await asyncio.to_thread(aof_redis.start)
            restarted_at = time.monotonic()

            await load.until_each_room_saw(30)
            await load.finish()
            figures = {room: check_room(room, players) for room, players in load.players.items()}
            # The timer keeps ticking until aclose: take what the clients saw before reading the history,
            # so every event in it was delivered, hence committed, before that read.
            seen = {
                room: {(e.seq, e.type, repr(e.data)) for p in players for e in p.seen}
                for room, players in load.players.items()
            }
            kept = {room: (await backend.load(room)) for room in load.players}
            history = {room: list(await backend.read_events(room, 0)) for room in load.players}
        finally:
            await load.aclose()
    errors = Counter(message.split(":")[0] for p in load.all_players() for message in p.failed.values())
    print(f"\nkill -9 of the Redis server (AOF, appendfsync always), down {restarted_at - killed_at:.2f} s")
    _print_rooms(figures, killed_at)
    print(f"  requests answered with an error meanwhile: {dict(errors) or 0}")
    for p in load.all_players():
        for k, message in p.failed.items():
            print(f"    {p.name} add {k}: {message}")
    for room, loaded in kept.items():
        assert loaded is not None
        kept_events = {(e.seq, e.type, repr(e.data)) for e in history[room]}
        print(
            f"  room {room}: last seq seen before the kill {before[room]}, committed now {loaded.last_seq}; "
            f"history holds all {len(seen[room])} events the clients saw: {seen[room] <= kept_events}"
        )
        assert loaded.last_seq >= before[room]
        missing = sorted(seen[room] - kept_events)
        assert not missing, f"events clients saw are missing from the history after the restart: {missing}"
