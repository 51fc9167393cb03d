"""`roomwire status`: rooms by state and worker, players and event rates, read from a shared engine.

What it reads, all through the Backend interface:

* `list_rooms()`: every live room, its type, seated players and hibernation mark (a worker
  evicted it from memory: `Backend.hibernate`);
* `kv_scan("rw:gateway:")`: the live gateways (runtime/presence.py: each keeps its key renewed);
* `kv_scan("rw:worker:")`: one report per live worker. Workers started by `roomwire serve`
  publish `Worker.stats()` there every PUBLISH_INTERVAL_S, with a ttl of REPORT_TTL_S, so a
  worker that dies or stalls drops out of the listing within a few seconds. Rates are computed
  by the worker from two consecutive snapshots and their timestamps, so one read suffices.

A room is *active* when a worker report lists it, *hibernating* when marked so, and *waiting*
otherwise: its worker died and its lease has not been taken over yet, or it was claimed less
than a report interval ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from roomwire.backends.base import Backend
from roomwire.errors import BackendError
from roomwire.runtime.presence import PRESENCE_PREFIX
from roomwire.runtime.worker import Worker

__all__ = [
    "PUBLISH_INTERVAL_S",
    "REPORT_TTL_S",
    "RoomMeter",
    "RoomStatus",
    "Status",
    "WorkerReport",
    "WorkerStatus",
    "forget_worker",
    "measure",
    "publish_worker_stats",
    "read_status",
    "render_status",
    "status_json",
    "worker_key",
]

log = logging.getLogger("roomwire.status")

WORKER_PREFIX = "rw:worker:"
PUBLISH_INTERVAL_S = 1.0
REPORT_TTL_S = 3.0  # three missed reports: the worker is taken for gone

RoomState = Literal["active", "hibernating", "waiting"]
_STATES: tuple[str, ...] = ("active", "hibernating", "waiting")


class RoomMeter(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker measured of one room it runs (totals since it claimed the room)."""

    inputs: int
    events: int
    commits: int
    handler_s: float
    players: int
    connected: int
    events_per_s: float
    inputs_per_s: float


class WorkerReport(msgspec.Struct, frozen=True, kw_only=True):
    """The snapshot a worker publishes under `rw:worker:<id>`."""

    worker: str
    at: float  # the worker's wall clock when measured
    rooms: dict[str, RoomMeter]


class RoomStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One room as `roomwire status` shows it; meters are None unless the room is active."""

    id: str
    type: str
    state: RoomState
    worker: str | None
    players: int
    max_players: int
    created_at: float
    connected: int | None = None
    events_per_s: float | None = None
    inputs_per_s: float | None = None
    events: int | None = None
    handler_s: float | None = None


class WorkerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One live worker: the rooms it runs and their combined event rate."""

    id: str
    rooms: int
    events_per_s: float
    report_age_s: float


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `roomwire status` prints (and `--json` emits)."""

    at: float
    rooms: list[RoomStatus]
    workers: list[WorkerStatus]
    by_state: dict[str, int]
    players: int
    events_per_s: float
    gateways: list[str] = []  # ids of the gateways whose presence is live


_encode_report = msgspec.msgpack.Encoder().encode
_decode_report = msgspec.msgpack.Decoder(WorkerReport).decode


def worker_key(worker_id: str) -> str:
    """The kv key of a worker's report."""
    return WORKER_PREFIX + worker_id


def measure(worker: Worker, previous: WorkerReport | None, now: float) -> WorkerReport:
    """A report of the worker's rooms now, with rates since `previous` (the last report)."""
    rooms: dict[str, RoomMeter] = {}
    before = previous.rooms if previous is not None else {}
    elapsed = now - previous.at if previous is not None else 0.0
    for room_id, stats in worker.stats().items():
        last = before.get(room_id)
        events, inputs = int(stats["events"]), int(stats["inputs"])
        if last is None or events < last.events or inputs < last.inputs:
            # Claimed since the last report (or claimed again: its totals restarted): from 0.
            events_delta, inputs_delta = events, inputs
        else:
            events_delta, inputs_delta = events - last.events, inputs - last.inputs
        rooms[room_id] = RoomMeter(
            inputs=inputs,
            events=events,
            commits=int(stats["commits"]),
            handler_s=stats["handler_s"],
            players=int(stats["players"]),
            connected=int(stats["connected"]),
            events_per_s=round(events_delta / elapsed, 2) if elapsed > 0 else 0.0,
            inputs_per_s=round(inputs_delta / elapsed, 2) if elapsed > 0 else 0.0,
        )
    return WorkerReport(worker=worker.id, at=now, rooms=rooms)


async def publish_worker_stats(
    worker: Worker,
    backend: Backend,
    interval_s: float = PUBLISH_INTERVAL_S,
    clock: Callable[[], float] = time.time,
) -> None:
    """Publish the worker's report every interval_s until cancelled (a failed write is retried)."""
    previous: WorkerReport | None = None
    failing = False
    while True:
        report = measure(worker, previous, clock())
        try:
            await backend.kv_set(worker_key(worker.id), _encode_report(report), ttl_s=REPORT_TTL_S)
            previous, failing = report, False
        except BackendError as exc:
            if not failing:  # once per outage, not once per interval
                log.warning("worker %s could not publish its stats (%s); retrying", worker.id, exc)
            failing = True
        await asyncio.sleep(interval_s)


async def forget_worker(worker: Worker, backend: Backend) -> None:
    """Remove the worker's report at once (a clean stop), instead of letting it expire."""
    with contextlib.suppress(BackendError):
        await backend.kv_delete(worker_key(worker.id))


async def read_status(
    backend: Backend, room_type: str | None = None, clock: Callable[[], float] = time.time
) -> Status:
    """Read rooms, hibernation marks and worker reports from the backend and combine them."""
    records = await backend.list_rooms(room_type)
    reports: list[WorkerReport] = []
    for key, raw in (await backend.kv_scan(WORKER_PREFIX)).items():
        try:
            reports.append(_decode_report(raw))
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable worker report under %r", key)
    now = clock()
    # A room in two reports (a stalled worker's last report outliving its lease): newest wins.
    running: dict[str, tuple[str, RoomMeter]] = {}
    for report in sorted(reports, key=lambda r: r.at):
        for room_id, meter in report.rooms.items():
            running[room_id] = (report.worker, meter)
    rooms: list[RoomStatus] = []
    for record in records:
        room = RoomStatus(
            id=record.id,
            type=record.type,
            state="hibernating" if record.hibernating else "waiting",
            worker=None,
            players=record.players,
            max_players=record.max_players,
            created_at=record.created_at,
        )
        held = running.get(record.id)
        if held is not None:
            worker_id, meter = held
            room = msgspec.structs.replace(
                room,
                state="active",
                worker=worker_id,
                connected=meter.connected,
                events_per_s=meter.events_per_s,
                inputs_per_s=meter.inputs_per_s,
                events=meter.events,
                handler_s=meter.handler_s,
            )
        rooms.append(room)
    workers: list[WorkerStatus] = []
    for report in sorted(reports, key=lambda r: r.worker):
        mine = [room for room in rooms if room.worker == report.worker]
        workers.append(
            WorkerStatus(
                id=report.worker,
                rooms=len(mine),
                events_per_s=round(sum(room.events_per_s or 0.0 for room in mine), 2),
                report_age_s=round(max(0.0, now - report.at), 2),
            )
        )
    by_state = {state: sum(1 for room in rooms if room.state == state) for state in _STATES}
    gateways = sorted(key[len(PRESENCE_PREFIX) :] for key in await backend.kv_scan(PRESENCE_PREFIX))
    return Status(
        at=now,
        rooms=rooms,
        workers=workers,
        by_state=by_state,
        players=sum(r.players for r in rooms),
        events_per_s=round(sum(r.events_per_s or 0.0 for r in rooms), 2),
        gateways=gateways,
    )


def status_json(status: Status) -> str:
    """The status as one JSON document (for scripts: `roomwire status --json`)."""
    return msgspec.json.encode(status).decode()


_STATE_STYLE = {"active": "green", "hibernating": "blue", "waiting": "yellow"}


def render_status(status: Status, console: Console) -> None:
    """Print the status as a summary line, a table of workers and a table of rooms."""
    counts = status.by_state
    console.print(
        f"[bold]{len(status.rooms)} rooms[/]: {counts['active']} active, "
        f"{counts['hibernating']} hibernating, {counts['waiting']} waiting · "
        f"{status.players} players · {status.events_per_s:g} events/s · {len(status.workers)} workers · "
        f"{len(status.gateways)} gateways",
        soft_wrap=True,
    )
    if status.workers:
        workers = Table(title="workers", title_justify="left")
        for name in ("worker", "rooms", "events/s", "report age s"):
            workers.add_column(name, no_wrap=True)
        for w in status.workers:
            workers.add_row(escape(w.id), str(w.rooms), f"{w.events_per_s:g}", f"{w.report_age_s:.1f}")
        console.print(workers)
    if status.rooms:
        rooms = Table(title="rooms", title_justify="left")
        # Ids are copied from here: never wrapped or cut; the numbers give way first.
        rooms.add_column("room", no_wrap=True, min_width=max(len(r.id) for r in status.rooms))
        rooms.add_column("type", no_wrap=True)
        rooms.add_column("state", no_wrap=True)
        rooms.add_column("worker", no_wrap=True, min_width=max(len(r.worker or "-") for r in status.rooms))
        for name in ("players", "conn", "events/s", "inputs/s", "cpu ms"):
            rooms.add_column(name, justify="right", no_wrap=True)
        for r in status.rooms:
            # Ids and type names come from users (`--worker-id`, room types): cells are markup.
            rooms.add_row(
                escape(r.id),
                escape(r.type),
                f"[{_STATE_STYLE[r.state]}]{r.state}[/]",
                escape(r.worker or "-"),
                f"{r.players}/{r.max_players}",
                _optional(r.connected),
                _optional(r.events_per_s),
                _optional(r.inputs_per_s),
                "-" if r.handler_s is None else f"{r.handler_s * 1000:.1f}",
            )
        console.print(rooms)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
