"""`roomwire deploy` of v2 while v1 rooms are played, with two gateways and two generic workers.

The fault tests' counter game (every add and tick checkable), in two versions whose `added`
events say which code handled them. Nothing stops while the deploy happens: no client
connection drops, no event is lost, doubled or reordered (every client's history is checked),
every v1 room is handled by v1 code to the end, every room created after the deploy by v2
code, and once the last v1 room ends the v1 children exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from distributed_kit import (
    FAULT_APP,
    WAIT_S,
    Load,
    Process,
    RoomFigures,
    check_room,
    free_port,
    open_load,
    opened_backend,
    owners,
    wait_listening,
    wait_status,
)
from versions_kit import PROBE_S, Processes, deploy_cli, rollback_cli

from roomwire.backends.base import Backend
from roomwire.cli.status import Status
from roomwire.runtime.bundle import pack
from roomwire_client import Client

ROOMS, PLAYERS = 4, 2  # per version; the machine running the tests is shared
_ADDED = 'room.broadcast("added", n=room.state["n"], c=msg.c, k=msg.k)'


def _write(folder: Path, flavour: str) -> str:
    """The fault tests' app, whose counter's `added` events also carry v=flavour."""
    source = FAULT_APP.read_text()
    assert _ADDED in source
    folder.mkdir()
    flavoured = source.replace(_ADDED, _ADDED[:-1] + ", v=FLAVOUR)", 1)
    (folder / "app.py").write_text(f"{flavoured}\nFLAVOUR = {flavour!r}\n")
    return pack(folder).version


class _Reconnects(logging.Handler):
    """Counts the Python client's reconnects (a dropped connection logs one)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "reconnecting" in record.getMessage() or "connection lost" in record.getMessage():
            self.count += 1


async def _until_new_rooms_get(backend: Backend, server: str, version: str) -> None:
    """Create and leave probe rooms through one gateway until its lobby pins new rooms to version."""
    async with Client(server, join_timeout_s=WAIT_S) as probe:
        await probe.login_guest()
        deadline = time.monotonic() + WAIT_S
        while True:
            room = await probe.create("counter")
            record = await backend.get_room(room.id)
            await room.leave()
            if record is not None and record.code_version == version:
                return
            assert time.monotonic() < deadline, f"{server} never pinned new rooms to {version}"
            await asyncio.sleep(PROBE_S)  # pacing, under the joins-per-second limit of a connection


def _flavours(load: Load) -> set[str]:
    return {e.data["v"] for p in load.all_players() for e in p.seen if e.type == "added"}


@dataclass
class _Scene:
    """Two gateways, two generic workers, ROOMS v1 rooms played since before the deploy of v2 and
    ROOMS rooms created after it, all being played."""

    backend: Backend
    old: Load
    new: Load
    workers: list[Process]
    v1: str
    v2: str
    deploy_s: float
    reconnects: _Reconnects
    servers: list[str]

    def both(self, i: int) -> list[str]:
        """Servers for client i: each client on its own gateway, alternating, so rooms span both."""
        return [self.servers[i % 2], self.servers[(i + 1) % 2]]

    def check(self) -> dict[str, RoomFigures]:
        """check_room for every room, and each room's events from its own version's code."""
        played = {**self.old.players, **self.new.players}
        figures = {room: check_room(room, players) for room, players in played.items()}
        assert _flavours(self.old) == {"one"}, "a v1 room was handled by other code"
        assert _flavours(self.new) == {"two"}, "a room created after the deploy was not handled by v2"
        assert all(f.failed == 0 for f in figures.values()), "a client request failed"
        return figures


@contextlib.asynccontextmanager
async def _deployed_under_load(tmp_path: Path, processes: Processes) -> AsyncIterator[_Scene]:
    v1, v2 = _write(tmp_path / "v1", "one"), _write(tmp_path / "v2", "two")
    url = processes.url
    await asyncio.to_thread(deploy_cli, tmp_path / "v1", url)
    ports = [free_port(), free_port()]
    gateways = [
        processes.serve(f"g{i}", tmp_path / "v1", "gateway", "--port", str(port))
        for i, port in enumerate(ports)
    ]
    workers = [processes.generic_worker(name) for name in ("ga", "gb")]
    await asyncio.gather(*(wait_listening(g, p) for g, p in zip(gateways, ports, strict=True)))
    for worker in workers:
        ready = f"generic worker {worker.name} running deployed versions"
        await asyncio.to_thread(worker.wait_for_line, ready)
    servers = [f"http://127.0.0.1:{p}" for p in ports]

    def both(i: int) -> list[str]:  # each client on its own gateway, alternating: rooms span both
        return [servers[i % 2], servers[(i + 1) % 2]]

    reconnects = _Reconnects()
    client_log = logging.getLogger("roomwire_client")
    client_log.addHandler(reconnects)
    old: Load | None = None
    new: Load | None = None
    try:
        async with opened_backend(url) as backend:
            old = await open_load(ROOMS, PLAYERS, both)
            old.start()
            await old.until_each_room_saw(10)

            deploy_started = time.monotonic()
            line = await asyncio.to_thread(deploy_cli, tmp_path / "v2", url)
            deploy_s = time.monotonic() - deploy_started
            assert line == f"version {v2} (current), replaced {v1}"
            for server in servers:
                await _until_new_rooms_get(backend, server, v2)
            new = await open_load(ROOMS, PLAYERS, both)
            new.start()
            await asyncio.gather(old.until_each_room_saw(20), new.until_each_room_saw(20))
            for room_id in old.players:
                assert (await backend.get_room(room_id)).code_version == v1  # type: ignore[union-attr]
            for room_id in new.players:
                assert (await backend.get_room(room_id)).code_version == v2  # type: ignore[union-attr]
            yield _Scene(backend, old, new, workers, v1, v2, deploy_s, reconnects, servers)
    finally:
        client_log.removeHandler(reconnects)
        for load in (old, new):
            if load is not None:
                await load.aclose()


async def test_deploy_under_load_drops_nothing_and_pins_every_room(
    tmp_path: Path, processes: Processes
) -> None:
    async with _deployed_under_load(tmp_path, processes) as scene:
        await asyncio.gather(scene.old.finish(), scene.new.finish())
        figures = scene.check()
        assert scene.reconnects.count == 0, "a client connection dropped during the deploy"

        # The v1 rooms end: their players leave for good (counter rooms end when empty).
        for player in scene.old.all_players():
            await player.room.leave()
        ran_v1 = [w for w in scene.workers if w.count(f"version {scene.v1} started in child")]
        assert ran_v1
        for worker in ran_v1:
            await asyncio.to_thread(worker.wait_for_line, f"version {scene.v1} stopped", WAIT_S)
        assert not any(w.count(f"version {scene.v2} stopped") for w in scene.workers)
    gap = max(f.longest_silence_s for f in figures.values())
    events = sum(f.counter + f.ticks for f in figures.values())
    print(
        f"\ndeploy of v2 under load ({ROOMS} v1 rooms x {PLAYERS} players on 2 gateways, 2 generic "
        f"workers): the command took {scene.deploy_s:.2f} s; {events} events checked, 0 lost, 0 doubled, "
        f"0 reconnects, 0 failed requests; longest gap between two events a client saw: "
        f"{gap * 1000:.0f} ms (ticks every 200 ms); v1 children exited after the last v1 room ended"
    )


async def test_a_killed_generic_worker_rooms_continue_under_their_own_version(
    tmp_path: Path, processes: Processes
) -> None:
    async with _deployed_under_load(tmp_path, processes) as scene:
        rooms = [*scene.old.players, *scene.new.players]
        status = await wait_status(
            scene.backend, lambda s: all(owners(s, rooms).values()), "every room active on a worker"
        )
        held = owners(status, rooms)
        victim = next(  # the generic worker whose children run rooms of both versions, if one does
            (
                w
                for w in scene.workers
                if any((held[r] or "").startswith(f"{w.name}-") for r in scene.old.players)
                and any((held[r] or "").startswith(f"{w.name}-") for r in scene.new.players)
            ),
            scene.workers[0],
        )
        moved = [r for r in rooms if (held[r] or "").startswith(f"{victim.name}-")]
        children = [
            int(m.group(1)) for line in victim.lines if (m := re.search(r"started in child (\d+)", line))
        ]
        # A machine crash: the parent and its children SIGKILLed at once, nothing released.
        killed_at = time.monotonic()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        victim.kill()
        await asyncio.gather(scene.old.until_each_room_saw(20), scene.new.until_each_room_saw(20))
        await asyncio.gather(scene.old.finish(), scene.new.finish())
        figures = scene.check()
        gone = f"{victim.name}-"

        def elsewhere(s: Status) -> bool:
            return all(w is not None and not w.startswith(gone) for w in owners(s, moved).values())

        after = await wait_status(scene.backend, elsewhere, "the killed worker's rooms active elsewhere")
    versions = {r: "v1" if r in scene.old.players else "v2" for r in moved}
    recovery = [figures[r].silence_ended_at - killed_at for r in moved]
    print(
        f"\nSIGKILL of generic worker {victim.name} and its {len(children)} children, running "
        f"{sorted(versions.values())}: every room continued under its own version on "
        f"{sorted(set(owners(after, moved).values()), key=str)}; longest silence after the kill "
        f"{max(recovery, default=0.0):.2f} s; 0 lost, 0 doubled"
    )


async def test_rollback_under_load_sends_new_rooms_back_and_keeps_running_ones(
    tmp_path: Path, processes: Processes
) -> None:
    async with _deployed_under_load(tmp_path, processes) as scene:
        started = time.monotonic()
        line = await asyncio.to_thread(rollback_cli, scene.v1, processes.url)
        rollback_s = time.monotonic() - started
        assert line == f"version {scene.v1} (current), replaced {scene.v2}"
        for server in scene.servers:
            await _until_new_rooms_get(scene.backend, server, scene.v1)
        back = await open_load(ROOMS, PLAYERS, scene.both)
        try:
            back.start()
            await asyncio.gather(*(load.until_each_room_saw(20) for load in (scene.old, scene.new, back)))
            await asyncio.gather(scene.old.finish(), scene.new.finish(), back.finish())
            scene.check()  # the v2 rooms created before the rollback still run v2, the v1 rooms v1
            for room_id, players in back.players.items():
                check_room(room_id, players)
                assert (await scene.backend.get_room(room_id)).code_version == scene.v1  # type: ignore[union-attr]
            assert _flavours(back) == {"one"}, "a room created after the rollback was not handled by v1"
            assert all(not p.failed for p in back.all_players())
        finally:
            await back.aclose()
        assert scene.reconnects.count == 0, "a client connection dropped during the rollback"
    print(
        f"\nrollback to v1 under load: the command took {rollback_s:.2f} s; rooms created after it "
        f"run v1, the v2 rooms kept v2; 0 reconnects, 0 lost, 0 doubled"
    )
