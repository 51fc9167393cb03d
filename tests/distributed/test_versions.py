"""Rooms pinned to their code version (promise 5), with real processes on Redis.

Two versions of one app whose handler answers `ping` with its version's flavour: a gateway, a
worker running v1's files and a worker running v2's files. Rooms created before `roomwire deploy`
of v2 keep getting v1's answers; rooms created after get v2's; a v1 room whose worker is killed
waits for a v1 worker instead of moving to the v2 worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from distributed_kit import (
    ROOMWIRE,
    SECRET,
    START_S,
    WAIT_S,
    Process,
    free_port,
    new_namespace,
    opened_backend,
    wait_listening,
)

from roomwire.backends.base import Backend
from roomwire.runtime.bundle import pack
from roomwire.runtime.versions import CURRENT_CACHE_S
from roomwire_client import Client, Room

LEASE_TTL_S = 1.0
APP = """
from roomwire import App
import flavour

app = App("pinned")
duel = app.room("duel", idle_timeout_s=60)


@duel.message("ping")
def ping(room, player, msg):
    room.broadcast("pong", flavour=flavour.NAME, n=msg["n"])
"""


def _version(folder: Path, name: str) -> str:
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "flavour.py").write_text(f"NAME = {name!r}\n")
    return pack(folder).version


class _Processes:
    """Every process a test started; all stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, logs: Path, url: str) -> None:
        self.logs, self.url = logs, url
        self.started: list[Process] = []

    def serve(self, name: str, folder: Path, role: str, *extra: str) -> Process:
        args = [ROOMWIRE, "serve", str(folder / "app.py"), "--backend", self.url, "--role", role]
        args += ["--secret", SECRET, "--lease-ttl", str(LEASE_TTL_S), *extra]
        proc = Process(name, args, self.logs / f"{name}.log")
        self.started.append(proc)
        return proc

    def worker(self, name: str, folder: Path) -> Process:
        proc = self.serve(name, folder, "worker", "--worker-id", name)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()


@pytest.fixture
async def processes(tmp_path: Path, redis_url: str) -> AsyncIterator[_Processes]:
    """A fresh namespace of the shared Redis; its processes stopped and its keys dropped after."""
    made = _Processes(tmp_path, f"{redis_url}?namespace={new_namespace()}")
    try:
        yield made
    finally:
        made.stop_all()
        async with opened_backend(made.url) as backend:
            await backend.drop_all()


def _deploy(folder: Path, url: str) -> str:
    done = subprocess.run(
        [ROOMWIRE, "deploy", str(folder), "--backend", url],
        capture_output=True,
        text=True,
        timeout=START_S * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _pong(room: Room, n: int) -> str:
    await room.request("ping", {"n": n}, timeout=WAIT_S)
    while True:
        event = await room.next_event("pong", timeout=WAIT_S)
        if event.data["n"] == n:
            return str(event.data["flavour"])


async def _room_version(backend: Backend, room: Room) -> str:
    record = await backend.get_room(room.id)
    assert record is not None
    return record.code_version


async def test_rooms_keep_the_version_they_were_created_with_across_a_deploy(
    tmp_path: Path, processes: _Processes
) -> None:
    v1 = _version(tmp_path / "v1", "one")
    v2 = _version(tmp_path / "v2", "two")
    url = processes.url
    assert await asyncio.to_thread(_deploy, tmp_path / "v1", url) == f"version {v1} (current), first deploy"

    port = free_port()
    gateway = processes.serve("g1", tmp_path / "v1", "gateway", "--port", str(port))
    w1 = processes.worker("w1", tmp_path / "v1")
    w2 = processes.worker("w2", tmp_path / "v2")
    await wait_listening(gateway, port)
    await asyncio.gather(
        asyncio.to_thread(w1.wait_for_line, f"worker w1 running app 'pinned' version {v1}"),
        asyncio.to_thread(w2.wait_for_line, f"worker w2 running app 'pinned' version {v2}"),
    )
    server = f"http://127.0.0.1:{port}"
    async with opened_backend(url) as backend, Client(server) as alice, Client(server) as bob:
        await alice.login_guest()
        await bob.login_guest()
        old = await alice.create("duel")
        assert await _room_version(backend, old) == v1
        assert await _pong(old, 1) == "one"

        deployed = await asyncio.to_thread(_deploy, tmp_path / "v2", url)
        assert deployed == f"version {v2} (current), replaced {v1}"
        # The gateway's lobby reads the new pointer within CURRENT_CACHE_S: until then a new room
        # may still get v1 (and then runs v1's code, which is also right).
        deadline = time.monotonic() + CURRENT_CACHE_S + WAIT_S
        while True:
            new = await bob.create("duel")
            if await _room_version(backend, new) == v2:
                break
            assert await _pong(new, 0) == "one"
            await new.leave()
            assert time.monotonic() < deadline, "new rooms never got the deployed version"
        for n in range(2, 6):  # interleaved: each room always answers with its own version's code
            assert await _pong(old, n) == "one"
            assert await _pong(new, n) == "two"
        assert await _room_version(backend, old) == v1

        # The v1 worker dies: its room is not taken by the v2 worker (wrong code) but waits for a
        # v1 worker, and continues there with its state and v1's handlers.
        w1.kill()
        killed_at = time.monotonic()
        waiting = asyncio.create_task(_pong(old, 6))
        await asyncio.sleep(LEASE_TTL_S * 2)  # past the lease: w2 sweeps and could claim it now
        assert not waiting.done(), "a v1 room was answered with no v1 worker running"
        w3 = processes.worker("w3", tmp_path / "v1")
        assert await asyncio.wait_for(waiting, WAIT_S) == "one"
        print(
            f"\nv1 {v1}, v2 {v2}: the v1 room waited {time.monotonic() - killed_at:.2f} s for a v1 worker"
            f" (w3 started {LEASE_TTL_S * 2:.0f} s after the kill); the v2 worker never ran it"
        )
        assert await _pong(new, 7) == "two"
        assert w3.popen.poll() is None and w2.popen.poll() is None
        assert w2.count("executor crashed") == 0
