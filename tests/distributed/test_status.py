"""`roomwire status` pieces in process: worker reports, rates, room states, rendering.

A real Worker runs the fault app's rooms on the embedded backend (the CLI refuses embedded
backends, which live inside one process; the functions it calls do not care). The command
itself, against Redis and separate processes, is tested in test_processes.py.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from collections.abc import Callable

import msgspec
from distributed_kit import ROOMWIRE, WAIT_S, free_port, wait_status
from fault_app import app
from rich.console import Console

from roomwire import App, GatewaySettings
from roomwire.backends.base import Backend
from roomwire.backends.records import CreateInput, RoomRecord
from roomwire.cli.status import (
    REPORT_TTL_S,
    Status,
    measure,
    publish_worker_stats,
    read_status,
    render_status,
    status_json,
)
from roomwire.runtime.worker import Worker


async def _create(backend: Backend, room_id: str, room_type: str) -> None:
    record = RoomRecord(id=room_id, type=room_type, max_players=4, created_at=time.time())
    await backend.create_room(record, CreateInput(options={}, at=time.time()))


async def _until(check: Callable[[], bool]) -> None:
    """Poll an in-process condition that has no event of its own (a worker's counters)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


async def test_rates_come_from_two_reports_and_restart_with_a_new_claim(backend: Backend) -> None:
    worker = Worker(app.room_types, backend, worker_id="w-test", lease_ttl_s=1.0)
    await _create(backend, "ticking", "counter")  # its timer emits an event every 0.2 s
    await worker.start()
    try:
        await _until(lambda: "ticking" in worker.stats())
        first = measure(worker, None, now=100.0)
        assert first.rooms["ticking"].events_per_s == 0.0  # no earlier report: no rate yet
        events_then = first.rooms["ticking"].events
        await _until(lambda: worker.stats()["ticking"]["events"] >= events_then + 2)
        second = measure(worker, first, now=102.0)
        room = second.rooms["ticking"]
        assert room.events_per_s == round((room.events - events_then) / 2.0, 2) > 0
        # A report whose totals are above the current ones is from an earlier claim of the room.
        inflated = msgspec.structs.replace(
            first, rooms={"ticking": msgspec.structs.replace(first.rooms["ticking"], events=10**9)}
        )
        again = measure(worker, inflated, now=101.0)
        assert again.rooms["ticking"].events_per_s == float(again.rooms["ticking"].events)
    finally:
        await worker.aclose()


async def test_rooms_are_waiting_then_active_then_hibernating(backend: Backend) -> None:
    await _create(backend, "busy", "counter")
    await _create(backend, "idle", "sleepy")  # nobody joins, no timer: hibernates after 1 s
    status = await read_status(backend)
    assert [(r.id, r.state, r.worker) for r in status.rooms] == [
        ("busy", "waiting", None),
        ("idle", "waiting", None),
    ]
    assert status.workers == []

    worker = Worker(app.room_types, backend, worker_id="w-test", lease_ttl_s=1.0)
    await worker.start()
    publisher = asyncio.create_task(publish_worker_stats(worker, backend, interval_s=0.1))
    try:
        status = await wait_status(
            backend,
            lambda s: (
                [(r.id, r.state) for r in s.rooms] == [("busy", "active"), ("idle", "hibernating")]
                and (s.rooms[0].events_per_s or 0) > 0
            ),
            "busy active with a rate, idle hibernating",
        )
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        await worker.aclose()
    busy = status.rooms[0]
    assert busy.worker == "w-test" and busy.connected == 0 and busy.events is not None
    assert status.by_state == {"active": 1, "hibernating": 1, "waiting": 0}
    assert [(w.id, w.rooms) for w in status.workers] == [("w-test", 1)]
    assert status.events_per_s == busy.events_per_s
    assert msgspec.json.decode(status_json(status), type=Status) == status

    console = Console(width=200, record=True, file=io.StringIO())
    render_status(status, console)
    text = console.export_text()
    assert "2 rooms: 1 active, 1 hibernating, 0 waiting" in text
    for word in ("busy", "idle", "w-test", "hibernating", "active"):
        assert word in text


async def test_a_worker_report_expires_when_the_worker_stops_publishing(backend: Backend) -> None:
    worker = Worker(app.room_types, backend, worker_id="w-gone", lease_ttl_s=1.0)
    publisher = asyncio.create_task(publish_worker_stats(worker, backend, interval_s=0.1))
    try:
        await wait_status(backend, lambda s: [w.id for w in s.workers] == ["w-gone"], "the worker's report")
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
    # Nothing deletes it: the report's ttl (REPORT_TTL_S) ends it.
    await wait_status(backend, lambda s: s.workers == [], "the report expired", REPORT_TTL_S + WAIT_S)


def test_status_command_explains_what_it_cannot_read() -> None:
    embedded = subprocess.run(
        [ROOMWIRE, "status", "--backend", "memory://"], capture_output=True, text=True, timeout=WAIT_S
    )
    assert embedded.returncode == 1 and "reads a shared engine" in embedded.stderr
    unreachable = subprocess.run(
        [ROOMWIRE, "status", "--backend", f"redis://127.0.0.1:{free_port()}/0"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert unreachable.returncode == 1 and "error:" in unreachable.stderr, unreachable.stderr
    assert "Traceback" not in unreachable.stderr


async def test_a_gateway_is_listed_while_it_runs(backend: Backend) -> None:
    lobby_app = App("status-gateways", settings=GatewaySettings(presence_ttl_s=1.0))
    lobby_app.room("arena")
    gateway = lobby_app.build_gateway(backend, run_worker=False, manage_backend=False)
    await gateway.start()  # its presence is written before it serves anyone
    try:
        assert (await read_status(backend)).gateways == [gateway.id]
        await asyncio.sleep(1.5)  # past the first key's TTL: listed still only if it renewed
        status = await read_status(backend)
        assert status.gateways == [gateway.id]
        console = Console(width=200, record=True, file=io.StringIO())
        render_status(status, console)
        assert "1 gateways" in console.export_text()
    finally:
        await gateway.aclose()
    assert (await read_status(backend)).gateways == []  # a gateway that stops removes its presence
