"""Rooms pinned to their code version (promise 5), with real processes on Redis.

Two versions of one app whose handler answers `ping` with its version's flavour: a gateway, a
worker running v1's files and a worker running v2's files. Rooms created before `roomwire deploy`
of v2 keep getting v1's answers; rooms created after get v2's; a v1 room whose worker is killed
waits for a v1 worker instead of moving to the v2 worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from distributed_kit import WAIT_S, free_port, opened_backend, wait_listening
from versions_kit import (
    LEASE_TTL_S,
    PROBE_S,
    Processes,
    deploy_cli,
    pong,
    room_version,
    versions_json,
    write_version,
)

from roomwire.runtime.versions import CURRENT_CACHE_S
from roomwire_client import Client


async def test_rooms_keep_the_version_they_were_created_with_across_a_deploy(
    tmp_path: Path, processes: Processes
) -> None:
    v1 = write_version(tmp_path / "v1", "one")
    v2 = write_version(tmp_path / "v2", "two")
    url = processes.url
    first = await asyncio.to_thread(deploy_cli, tmp_path / "v1", url)
    assert first == f"version {v1} (current), first deploy"

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
        assert await room_version(backend, old) == v1
        assert await pong(old, 1) == "one"

        deployed = await asyncio.to_thread(deploy_cli, tmp_path / "v2", url)
        assert deployed == f"version {v2} (current), replaced {v1}"
        # The gateway's lobby reads the new pointer within CURRENT_CACHE_S: until then a new room
        # may still get v1 (and then runs v1's code, which is also right).
        deadline = time.monotonic() + CURRENT_CACHE_S + WAIT_S
        while True:
            new = await bob.create("duel")
            if await room_version(backend, new) == v2:
                break
            assert await pong(new, 0) == "one"
            await new.leave()
            assert time.monotonic() < deadline, "new rooms never got the deployed version"
            await asyncio.sleep(PROBE_S)  # pacing, under the joins-per-second limit of a connection
        for n in range(2, 6):  # interleaved: each room always answers with its own version's code
            assert await pong(old, n) == "one"
            assert await pong(new, n) == "two"
        assert await room_version(backend, old) == v1
        # What an operator sees: rooms and the workers running them, per version (reports come
        # once a second, so poll).
        while True:
            listed = {v["version"]: v for v in await asyncio.to_thread(versions_json, url)}
            if listed[v1]["workers"] == ["w1"] and listed[v2]["workers"] == ["w2"]:
                break
            assert time.monotonic() < deadline + WAIT_S, f"versions never showed the workers: {listed}"
            await asyncio.sleep(0.2)
        assert listed[v2]["current"] and not listed[v1]["current"]
        assert listed[v1]["rooms"] >= 1 and listed[v2]["rooms"] == 1

        # The v1 worker dies: its room is not taken by the v2 worker (wrong code) but waits for a
        # v1 worker, and continues there with its state and v1's handlers.
        w1.kill()
        killed_at = time.monotonic()
        waiting = asyncio.create_task(pong(old, 6))
        await asyncio.sleep(LEASE_TTL_S * 2)  # past the lease: w2 sweeps and could claim it now
        assert not waiting.done(), "a v1 room was answered with no v1 worker running"
        w3 = processes.worker("w3", tmp_path / "v1")
        assert await asyncio.wait_for(waiting, WAIT_S) == "one"
        print(
            f"\nv1 {v1}, v2 {v2}: the v1 room waited {time.monotonic() - killed_at:.2f} s for a v1 worker"
            f" (w3 started {LEASE_TTL_S * 2:.0f} s after the kill); the v2 worker never ran it"
        )
        assert await pong(new, 7) == "two"
        assert w3.popen.poll() is None and w2.popen.poll() is None
        assert w2.count("executor crashed") == 0

        # The opt-out: a worker started with --any-version runs a room of another version (the
        # behaviour before versions), here the v1 room on v2's code once no v1 worker is left.
        w3.stop()
        processes.serve("w4", tmp_path / "v2", "worker", "--worker-id", "w4", "--any-version")
        assert await pong(old, 8) == "two"
