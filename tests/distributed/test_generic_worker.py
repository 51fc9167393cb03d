"""A generic worker (`roomwire serve --role worker` without an app) on Redis, with real processes.

It loads each version that rooms need from the engine into a child process of its own, so a v1
room and a v2 room are answered by their own version's code from one worker, and it stops a
version's child once no room of that version is left.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import msgspec
from distributed_kit import WAIT_S, free_port, opened_backend, wait_listening
from versions_kit import PROBE_S, Processes, deploy_cli, pong, room_version, write_version

from roomwire.backends.records import CreateInput, RoomRecord
from roomwire.runtime.bundle import Bundle, SealedBundle
from roomwire.runtime.versions import BUNDLE_PREFIX, CURRENT_CACHE_S
from roomwire_client import Client


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; its new parent reaps it


async def test_a_generic_worker_runs_each_version_in_a_child_of_its_own(
    tmp_path: Path, processes: Processes
) -> None:
    v1 = write_version(tmp_path / "v1", "one")
    v2 = write_version(tmp_path / "v2", "two")
    url = processes.url
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", url)
    port = free_port()
    gateway = processes.serve("g1", tmp_path / "v1", "gateway", "--port", str(port))
    generic = processes.generic_worker("gw")
    await wait_listening(gateway, port)
    await asyncio.to_thread(generic.wait_for_line, "generic worker gw running deployed versions")
    assert generic.count("started in child") == 0  # no room yet: no child

    server = f"http://127.0.0.1:{port}"
    async with (
        opened_backend(url) as backend,
        Client(server, join_timeout_s=WAIT_S) as alice,
        Client(server, join_timeout_s=WAIT_S) as bob,
    ):
        await alice.login_guest()
        await bob.login_guest()
        asked_at = time.monotonic()
        old = await alice.create("duel")  # joined once the v1 child runs it: a cold start
        cold_s = time.monotonic() - asked_at
        assert await room_version(backend, old) == v1
        assert await pong(old, 1) == "one"

        await asyncio.to_thread(deploy_cli, tmp_path / "v2", url)
        deadline = time.monotonic() + CURRENT_CACHE_S + WAIT_S
        while True:
            new = await bob.create("duel")
            if await room_version(backend, new) == v2:
                break
            await new.leave()
            assert time.monotonic() < deadline, "new rooms never got the deployed version"
            await asyncio.sleep(PROBE_S)  # pacing, under the joins-per-second limit of a connection
        for n in range(2, 5):
            assert await pong(old, n) == "one"
            assert await pong(new, n) == "two"

        started = {
            m.group(1): int(m.group(2))
            for line in generic.lines
            if (m := re.search(r"version (\w+) started in child (\d+)", line))
        }
        assert set(started) == {v1, v2} and started[v1] != started[v2]

        rss_mb = {v: _rss_mb(pid) for v, pid in started.items()}
        await old.leave()  # the last v1 room ends: v1's child is no longer needed
        await asyncio.to_thread(generic.wait_for_line, f"version {v1} stopped", WAIT_S)
        assert await pong(new, 5) == "two"
        assert generic.count(f"version {v2} stopped") == 0

    # A generic worker killed outright takes its children with it (no orphan keeps running).
    generic.kill()
    deadline = time.monotonic() + WAIT_S
    while _alive(started[v2]):
        assert time.monotonic() < deadline, f"child {started[v2]} outlived its killed parent"
        await asyncio.sleep(0.05)  # nothing to wait on but the process table
    print(
        f"\ngeneric worker: v1 {v1} in child {started[v1]}, v2 {v2} in child {started[v2]}; "
        f"first room joined {cold_s:.2f} s after create (child cold start included); RSS per child "
        f"{', '.join(f'{rss:.0f} MB' for rss in rss_mb.values())}"
    )


async def test_a_version_scales_to_zero_and_back_on_the_next_join(
    tmp_path: Path, processes: Processes
) -> None:
    # No grace, not disposed when empty, idle after 1 s: a room nobody is in hibernates.
    policy = "idle_timeout_s=1, reconnect_grace_s=0, auto_dispose=False"
    v1 = write_version(tmp_path / "v1", "one", policy)
    url = processes.url
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", url)
    port = free_port()
    gateway = processes.serve("g1", tmp_path / "v1", "gateway", "--port", str(port))
    generic = processes.generic_worker("gw")
    await wait_listening(gateway, port)
    await asyncio.to_thread(generic.wait_for_line, "generic worker gw running deployed versions")
    server = f"http://127.0.0.1:{port}"
    async with Client(server, join_timeout_s=WAIT_S) as alice:
        await alice.login_guest()
        room = await alice.create("duel")
        assert await pong(room, 1) == "one"
        room_id = room.id
    # Alice is gone: the room hibernates, and with no live room left v1's child stops.
    await asyncio.to_thread(generic.wait_for_line, f"version {v1} stopped", WAIT_S)
    async with Client(server, join_timeout_s=WAIT_S) as bob:
        await bob.login_guest()
        asked_at = time.monotonic()
        again = await bob.join(room_id)  # input for a hibernating room of a version with no child
        cold_s = time.monotonic() - asked_at
        assert await pong(again, 2) == "one"
    assert generic.count(f"version {v1} started in child") == 2
    print(f"\nscale to zero and back: a join to a hibernated v1 room answered {cold_s:.2f} s later")


async def test_with_a_deploy_key_a_generic_worker_runs_no_unsigned_or_tampered_bundle(
    tmp_path: Path, processes: Processes
) -> None:
    key = "deploy-key-0123456789abcdef"
    unsigned = write_version(tmp_path / "unsigned", "one")
    signed = write_version(tmp_path / "signed", "two")
    url = processes.url
    await asyncio.to_thread(deploy_cli, tmp_path / "unsigned", url)
    await asyncio.to_thread(deploy_cli, tmp_path / "signed", url, "--key", key)
    generic = processes.generic_worker("gw", "--deploy-key", key)
    await asyncio.to_thread(generic.wait_for_line, "generic worker gw running deployed versions")
    async with opened_backend(url) as backend:
        # Someone with write access to the engine swaps the signed version's code.
        raw = await backend.kv_get(BUNDLE_PREFIX + signed)
        assert raw is not None
        sealed = msgspec.msgpack.decode(raw, type=SealedBundle)
        original = Bundle.from_archive(sealed.archive)
        forged = Bundle.from_files(original.entry, "", {**original.files, "flavour.py": b"NAME = 'evil'\n"})
        await backend.kv_set(BUNDLE_PREFIX + signed, _resealed(sealed, forged))
        now = time.time()
        for room_id, version in (("r-unsigned", unsigned), ("r-tampered", signed)):
            record = RoomRecord(id=room_id, type="duel", max_players=2, created_at=now, code_version=version)
            await backend.create_room(record, CreateInput({}, now))
        await asyncio.to_thread(generic.wait_for_line, f"version {unsigned} is unsigned", WAIT_S)
        changed = f"version {signed}: the stored bundle was changed"
        await asyncio.to_thread(generic.wait_for_line, changed, WAIT_S)
        assert generic.count("started in child") == 0
        for room_id in ("r-unsigned", "r-tampered"):
            assert await backend.load(room_id) is None  # never run: no commit


def _resealed(sealed: SealedBundle, forged: Bundle) -> bytes:
    # The forger keeps the old signature (without the key they cannot make a new one).
    return msgspec.msgpack.encode(SealedBundle(forged.archive, sealed.signature))


async def test_input_wakes_the_generic_worker_only_for_a_version_no_child_runs(tmp_path: Path) -> None:
    """Inputs to rooms of a running version need no listing of every room (one per input before)."""
    import sys

    from roomwire.backends import backend_from_url
    from roomwire.cli.generic import GenericWorker, _Child

    generic = GenericWorker(backend_from_url("memory://"), "memory://", "g-test", "s" * 16, 2.0, None)
    sleeper = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)")
    try:
        generic.children["v1"] = _Child("v1", sleeper, tmp_path, time.monotonic())
        generic._version_of = {"r1": "v1", "r2": "v2", "r0": ""}
        for room_id, wakes in (("r1", False), ("r0", False), ("r2", True), ("new", True)):
            generic._wake.clear()
            generic._on_input(room_id)
            assert generic._wake.is_set() is wakes, room_id
    finally:
        sleeper.kill()
        await sleeper.wait()
