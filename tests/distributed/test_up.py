"""`roomwire up` on Redis with real processes: it restarts what dies, and scales workers to zero
and back when rooms hibernate and a message wakes one (the cold start is measured and printed)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from distributed_kit import (
    ROOMWIRE,
    SECRET,
    WAIT_S,
    Process,
    free_port,
    new_namespace,
    opened_backend,
    wait_listening,
)
from versions_kit import LEASE_TTL_S, deploy_cli, pong, write_version

from roomwire_client import Client

COLD_STARTS = 10


@pytest.fixture
async def namespace_url(redis_url: str) -> AsyncIterator[str]:
    """A fresh namespace of the shared Redis, dropped afterwards."""
    url = f"{redis_url}?namespace={new_namespace()}"
    yield url
    async with opened_backend(url) as backend:
        await backend.drop_all()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Process]]:
    """Processes a test started; each stopped (SIGTERM: `up` stops its children) afterwards."""
    procs: list[Process] = []
    yield procs
    for proc in procs:
        proc.stop()
    for folder in Path(tempfile.gettempdir()).glob("roomwire-uptest-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _up(procs: list[Process], logs: Path, url: str, app: Path, port: int, *extra: str) -> Process:
    name = f"uptest-{os.urandom(3).hex()}"
    args = [ROOMWIRE, "up", "--backend", url, "--app", str(app), "--port", str(port), "--host", "127.0.0.1"]
    args += ["--secret", SECRET, "--lease-ttl", str(LEASE_TTL_S), "--name", name, *extra]
    proc = Process(name, args, logs / "up.log")
    procs.append(proc)
    return proc


def _pid(line: str) -> int:
    found = re.search(r"\(pid (\d+)\)", line)
    assert found is not None, line
    return int(found.group(1))


async def _wait_line(proc: Process, text: str, count: int = 1) -> None:
    """Wait until `count` lines contain text."""
    deadline = time.monotonic() + WAIT_S
    while proc.count(text) < count:
        assert proc.popen.poll() is None, proc.output()
        assert time.monotonic() < deadline, f"no {count}x {text!r}:\n{proc.output()}"
        await asyncio.sleep(0.05)  # polling the copied output


async def test_up_restarts_a_killed_worker_and_a_killed_gateway(
    tmp_path: Path, namespace_url: str, started: list[Process]
) -> None:
    write_version(tmp_path / "v1", "one")
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", namespace_url)
    port = free_port()
    up = _up(started, tmp_path, namespace_url, tmp_path / "v1" / "app.py", port, "--min-workers", "1")
    worker_line = await asyncio.to_thread(up.wait_for_line, f"worker {up.name}-w1 started")
    gateway_line = await asyncio.to_thread(up.wait_for_line, f"gateway {up.name}-g1 started")
    await wait_listening(up, port)
    server = f"http://127.0.0.1:{port}"
    async with Client(server, join_timeout_s=WAIT_S) as alice:
        await alice.login_guest()
        room = await alice.create("duel")
        assert await pong(room, 1) == "one"

        os.kill(_pid(worker_line), signal.SIGKILL)  # its version child dies with it
        await _wait_line(up, f"worker {up.name}-w1 exited with status -9; restarting in")
        await _wait_line(up, f"worker {up.name}-w1 started", 2)
        assert await pong(room, 2) == "one"  # the room continues on the restarted worker

    os.kill(_pid(gateway_line), signal.SIGKILL)
    await _wait_line(up, f"gateway {up.name}-g1 exited with status -9; restarting in")
    await _wait_line(up, f"gateway {up.name}-g1 started", 2)
    await wait_listening(up, port)
    async with Client(server, join_timeout_s=WAIT_S) as bob:
        await bob.login_guest()
        assert await pong(await bob.create("duel"), 3) == "one"

    up.stop()  # SIGTERM: gateways, then workers, stop; `up` exits 0
    assert up.popen.returncode == 0, up.output()
    stops = [line for line in up.lines if line.startswith("up: ") and "stopped (shutting down)" in line]
    assert [line.split()[1] for line in stops] == ["gateway", "worker"], stops  # gateways first


async def test_up_scales_workers_to_zero_and_back_on_a_message(
    tmp_path: Path, namespace_url: str, started: list[Process]
) -> None:
    # No grace, not disposed when empty, idle after 1 s: a room nobody is in hibernates.
    write_version(tmp_path / "v1", "one", "idle_timeout_s=1, reconnect_grace_s=0, auto_dispose=False")
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", namespace_url)
    port = free_port()
    up = _up(
        started,
        tmp_path,
        namespace_url,
        tmp_path / "v1" / "app.py",
        port,
        *("--min-workers", "0", "--max-workers", "2", "--scale-down-after", "1"),
    )
    await wait_listening(up, port)
    server = f"http://127.0.0.1:{port}"
    assert up.count("up: worker") == 0  # no room: no worker
    async with Client(server, join_timeout_s=WAIT_S) as alice:
        await alice.login_guest()
        room = await alice.create("duel")  # no worker: `up` starts one for the new room
        assert await pong(room, 0) == "one"
        room_id = room.id
    joined_s: list[float] = []
    answered_s: list[float] = []
    for n in range(1, COLD_STARTS + 1):
        # Everybody left: the room hibernates, then `up` stops the last worker.
        await _wait_line(up, "stopped (scaled down)", n)
        async with Client(server, join_timeout_s=WAIT_S) as bob:
            await bob.login_guest()
            asked_at = time.monotonic()
            again = await bob.join(room_id)  # input for a hibernated room, zero workers
            joined_s.append(time.monotonic() - asked_at)
            assert await pong(again, n) == "one"
            answered_s.append(time.monotonic() - asked_at)
    assert up.count(f"worker {up.name}-w1 started") == COLD_STARTS + 1
    assert up.count(f"{up.name}-w2") == 0  # one room never asks for a second worker

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    print(
        f"\nroomwire up cold start from zero workers over {COLD_STARTS} tries: join "
        f"p50 {pct(joined_s, 50):.2f} s p99 {pct(joined_s, 99):.2f} s; first answer "
        f"p50 {pct(answered_s, 50):.2f} s p99 {pct(answered_s, 99):.2f} s "
        f"(all: {', '.join(f'{s:.2f}' for s in answered_s)})"
    )


async def test_up_scales_up_with_rooms_and_back_down_one_worker_at_a_time(
    tmp_path: Path, namespace_url: str, started: list[Process]
) -> None:
    write_version(tmp_path / "v1", "one", "idle_timeout_s=1, reconnect_grace_s=0, auto_dispose=False")
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", namespace_url)
    port = free_port()
    up = _up(
        started,
        tmp_path,
        namespace_url,
        tmp_path / "v1" / "app.py",
        port,
        *("--min-workers", "0", "--max-workers", "2", "--rooms-per-worker", "1"),
        *("--scale-down-after", "1"),
    )
    await wait_listening(up, port)
    server = f"http://127.0.0.1:{port}"
    async with Client(server, join_timeout_s=WAIT_S) as alice:
        await alice.login_guest()
        rooms = [await alice.create("duel") for _ in range(3)]  # 3 rooms, 1 per worker, max 2
        for n, room in enumerate(rooms):
            assert await pong(room, n) == "one"
        await _wait_line(up, f"worker {up.name}-w2 started")
    # Everybody left: the rooms hibernate, and the workers stop one at a time.
    await _wait_line(up, "workers 2 -> 1")
    await _wait_line(up, "workers 1 -> 0")
    assert up.count(f"worker {up.name}-w3") == 0  # never above --max-workers
    steps = [
        tuple(map(int, m.groups()))
        for line in up.lines
        if (m := re.match(r"up: workers (\d+) -> (\d+)", line))
    ]
    assert all(after == before - 1 for before, after in steps if after < before), steps  # down: one by one
