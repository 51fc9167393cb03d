"""Separate processes on Redis, working normally: the arena and its bot on one gateway and two
workers, hibernation of an idle room, and `roomwire status` as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from distributed_kit import (
    ARENA_APP,
    ROOMWIRE,
    ROOT,
    STOP_S,
    WAIT_S,
    Deployment,
    opened_backend,
    wait_status,
)

from roomwire.cli.status import Status
from roomwire_client import Client

BOT_SECONDS = 4.0


async def _run(*args: str, timeout_s: float = WAIT_S) -> tuple[int, str]:
    """Run a command to completion (bounded); its exit status and its output."""
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await asyncio.wait_for(proc.wait(), STOP_S)
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _status_json(backend_url: str) -> dict[str, Any]:
    code, out = await _run(ROOMWIRE, "status", "--backend", backend_url, "--json")
    assert code == 0, out
    found: dict[str, Any] = json.loads(out)
    return found


def _room(status: dict[str, Any], room_id: str) -> dict[str, Any]:
    return next(r for r in status["rooms"] if r["id"] == room_id)


async def test_arena_bots_play_on_one_gateway_and_two_workers(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url, app=ARENA_APP)
    (gateway,), _ = await deployment.start(gateways=1, workers=2)
    bot = asyncio.create_task(
        _run(
            sys.executable,
            "examples/arena/bot.py",
            *("--url", gateway, "--bots", "4", "--seconds", str(BOT_SECONDS), "--seed", "7"),
            timeout_s=BOT_SECONDS + WAIT_S,
        )
    )
    async with opened_backend(deployment.backend_url) as backend:
        playing = await wait_status(
            backend,
            lambda s: any(r.type == "arena" and r.state == "active" and r.players == 4 for r in s.rooms),
            "the bots' arena active with 4 players",
        )
    code, out = await bot
    print(f"\narena on 1 gateway + 2 workers: {out.strip().splitlines()[-1]}")
    room = next(r for r in playing.rooms if r.type == "arena")
    print(
        f"  room {room.id} ran on worker {room.worker}: {room.events_per_s} events/s, {room.players} players"
    )
    assert code == 0, out


async def test_idle_room_hibernates_and_wakes_with_its_state(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    (gateway,), _ = await deployment.start(gateways=1, workers=1)
    async with (
        opened_backend(deployment.backend_url) as backend,
        Client(gateway) as alice,
        Client(gateway) as bob,
        Client(gateway) as carol,
    ):
        for client in (alice, bob, carol):
            await client.login_guest()
        busy = await carol.create("counter")  # stays connected; its timer ticks: active
        sleepy = await alice.create("sleepy")  # idle_timeout_s=1, no timer, not disposed when empty
        for k in (1, 2, 3):
            await sleepy.request("add", {"c": "alice", "k": k})
        await sleepy.leave()
        left_at = time.monotonic()

        def hibernating(s: Status) -> bool:
            return any(r.id == sleepy.id and r.state == "hibernating" for r in s.rooms)

        await wait_status(backend, hibernating, "the sleepy room hibernating")
        asleep_s = time.monotonic() - left_at

        # What an operator sees, from the command line.
        report = await _status_json(deployment.backend_url)
        code, table = await _run(ROOMWIRE, "status", "--backend", deployment.backend_url)
        assert code == 0, table

        woken_at = time.monotonic()
        again = await bob.join(sleepy.id)
        await again.request("add", {"c": "bob", "k": 1})
        event = await again.next_event("added")
        woke_s = time.monotonic() - woken_at
        awake = await wait_status(
            backend,
            lambda s: any(r.id == sleepy.id and r.state == "active" for r in s.rooms),
            "the sleepy room active again",
        )
    print(f"\nroom {sleepy.id}: hibernated {asleep_s:.2f} s after its last player left (idle_timeout_s 1)")
    print(f"  woke on a join and answered a message {woke_s:.3f} s later with count {event.data['n']}")
    print("  roomwire status while it slept:\n" + "\n".join("    " + line for line in table.splitlines()))
    assert event.data == {"n": 4, "c": "bob", "k": 1}  # 3 adds before, kept across hibernation

    asleep = _room(report, sleepy.id)
    assert (asleep["state"], asleep["worker"], asleep["players"]) == ("hibernating", None, 0)
    ticking = _room(report, busy.id)
    assert (ticking["state"], ticking["worker"], ticking["players"], ticking["connected"]) == (
        "active",
        "w1",
        1,
        1,
    )
    assert ticking["events_per_s"] > 0  # the counter's timer: 5 events per second
    assert report["by_state"] == {"active": 1, "hibernating": 1, "waiting": 0}
    assert [w["id"] for w in report["workers"]] == ["w1"]
    assert sleepy.id in table and "hibernating" in table and "w1" in table
    assert next(r for r in awake.rooms if r.id == sleepy.id).worker == "w1"
