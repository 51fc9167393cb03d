"""`roomwire bench APP`: bots play the user's own game and a latency and throughput table is printed.

Each bot joins a room through the lobby and sends one message type at a fixed rate with a client
id; the latency of a message is the time from sending it to its `ack` (applied, committed, and its
events delivered to the sender). Every event every bot receives is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from roomwire.protocol.codec import CodecName
from roomwire_client import Client, ClientError, Room


@dataclass
class BenchPlan:
    """What to run: rooms x players, each sending `message` with `data` at `rate_hz`."""

    url: str
    room_type: str
    message: str
    data: Any
    rooms: int
    players: int
    rate_hz: float
    duration_s: float
    codec: CodecName = "json"


@dataclass
class BenchResult:
    """What the bots saw."""

    sent: int = 0
    acked: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)  # the first message of each kind
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def failed(self) -> int:
        """Messages refused, timed out or lost."""
        return sum(self.errors.values())

    def percentile(self, p: float) -> float:
        """The p-th percentile of the ack latencies, in ms (0 when there are none)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run_bench(plan: BenchPlan, console: Console) -> BenchResult:
    """Connect the bots, run them for the planned duration, and collect their figures."""
    result = BenchResult()
    clients: list[Client] = []
    rooms: list[Room] = []
    try:
        for _ in range(plan.rooms):
            first = Client(plan.url, codec=plan.codec)
            clients.append(first)
            await first.login_guest()
            room = await first.create(plan.room_type)
            rooms.append(room)
            for _ in range(plan.players - 1):
                other = Client(plan.url, codec=plan.codec)
                clients.append(other)
                await other.login_guest()
                rooms.append(await other.join(room.id))
        cpu_before = _cpu_s()
        start = time.perf_counter()
        deadline = start + plan.duration_s
        with Progress(
            TextColumn("[bold]bench[/]"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("bots", total=plan.duration_s, status="")
            bots = [asyncio.create_task(_bot(room, plan, deadline, result)) for room in rooms]
            readers = [asyncio.create_task(_read(room, result)) for room in rooms]
            while (now := time.perf_counter()) < deadline:
                progress.update(
                    task,
                    completed=now - start,
                    status=f"sent {result.sent}  acked {result.acked}  events {result.events}",
                )
                await asyncio.sleep(0.25)  # refresh the progress display
            await asyncio.gather(*bots, return_exceptions=True)
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        result.elapsed_s = time.perf_counter() - start
        result.cpu_s = _cpu_s() - cpu_before
    finally:
        for client in clients:
            with contextlib.suppress(ClientError, OSError):
                await client.aclose()
    return result


async def _bot(room: Room, plan: BenchPlan, deadline: float, result: BenchResult) -> None:
    interval = 1.0 / plan.rate_hz
    in_flight: set[asyncio.Task[None]] = set()
    next_at = time.perf_counter()
    while next_at < deadline:
        task = asyncio.create_task(_one(room, plan, result))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))  # keep the planned rate
    if in_flight:
        await asyncio.wait(in_flight, timeout=10)


async def _one(room: Room, plan: BenchPlan, result: BenchResult) -> None:
    result.sent += 1
    started = time.perf_counter()
    try:
        await room.request(plan.message, plan.data, timeout=10)
    except ClientError as exc:
        name = type(exc).__name__
        result.errors[name] = result.errors.get(name, 0) + 1
        result.error_samples.setdefault(name, str(exc))
        return
    result.acked += 1
    result.latencies_ms.append((time.perf_counter() - started) * 1000)


async def _read(room: Room, result: BenchResult) -> None:
    with contextlib.suppress(ClientError):
        async for _ in room.events():
            result.events += 1


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def verdict(result: BenchResult, max_failed_pct: float) -> str | None:
    """Why the run does not measure the game (nothing acknowledged, too many failures), or None."""
    if result.sent == 0:
        return "no message was sent"
    kinds = "; ".join(
        f"{name} x{count} (e.g. {result.error_samples.get(name, '?')})"
        for name, count in sorted(result.errors.items(), key=lambda kv: -kv[1])
    )
    if result.acked == 0:
        return f"none of the {result.sent} messages was acknowledged: {kinds or 'no answer'}"
    failed_pct = result.failed / result.sent * 100
    if failed_pct > max_failed_pct:
        return (
            f"{result.failed} of {result.sent} messages failed ({failed_pct:.1f}% > --max-failed "
            f"{max_failed_pct:g}%): {kinds}"
        )
    return None


def render(plan: BenchPlan, result: BenchResult) -> Table:
    """The result as a rich table."""
    table = Table(
        title=f"roomwire bench: {plan.rooms} rooms x {plan.players} players, {plan.rate_hz:g} msg/s"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    elapsed = max(result.elapsed_s, 1e-9)
    rows = [
        ("message", escape(f"{plan.message} {json.dumps(plan.data)}")),
        ("sent / acked", f"{result.sent} / {result.acked}"),
        ("errors", escape(", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())) or "0")),
        ("acked per second", f"{result.acked / elapsed:,.0f}"),
        ("events delivered per second", f"{result.events / elapsed:,.0f}"),
        ("ack latency p50", _ms(result, 50)),
        ("ack latency p99", _ms(result, 99)),
        ("ack latency p99.9", _ms(result, 99.9)),
        ("ack latency max", _ms(result, 100)),
        ("bots' own CPU", f"{result.cpu_s / elapsed * 100:.0f}% of one core"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _ms(result: BenchResult, p: float) -> str:
    # No acknowledged message, no latency: a 0.00 here once read as a very fast server.
    return f"{result.percentile(p):.2f} ms" if result.latencies_ms else "-"
