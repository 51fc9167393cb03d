"""Load generator: runs one scenario against one server and writes its figures as JSON.

Runs in its own process (bench/run.py pins it to another core than the server with taskset), on
uvloop, and reports its own CPU use over each measurement window so that a saturated load
generator is visible instead of being mistaken for a slow server.

Scenarios:
- ping: one client, sequential request → reply round trips.
- broadcast: R rooms x C clients, each client sends a `move` at F/s; every client of the room
  receives every move (the sender too). Latency is sender's send → each receiver's receipt.
- sweep: broadcast with F stepped up (doubling, then bisecting) until p99 ≥ the limit, a message
  is lost or a connection drops: the highest delivered rate that passed.
- scale: many connections (2,000 in 200 rooms by default) at 1 move/s each: idle RSS per
  connection, then latency under that load.
- lockstep: one move in flight at a time across R rooms x C clients: server CPU per delivery
  with no batching, the steadiest figure on a shared machine (bench/ab.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
from typing import Any

from adapters import Adapter, Client, Stats, make_adapter
from procstat import TreeSample, machine_busy_s, process_label, sample_tree

TICK_S = 0.001
MAX_SENDS_PER_TURN = 2000  # a late sender catches up in slices so receiving is not starved
LOCKSTEP_TIMEOUT_S = 30.0  # a move whose deliveries take longer than this fails the run


def _percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


def _cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_self_user_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def _engine_cpu_s(pid: int | None) -> float | None:
    # The engine (Redis) is one process that other clients may use too: read it alone, not its tree.
    return sample_tree(pid, [pid]).cpu_s if pid else None


async def _sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def _send_loop(
    adapter: Adapter, order: list[Client], total_rate: float, start_ns: int, end_ns: int, stats: Stats
) -> None:
    """Send moves round-robin over `order` at `total_rate` per second, each stamped at its send."""
    n = len(order)
    interval_ns = 1e9 / total_rate
    send_move = adapter.send_move
    monotonic_ns = time.monotonic_ns
    k = 0
    while True:
        now = monotonic_ns()
        if now >= end_ns:
            return
        due = min(int((now - start_ns) / interval_ns) + 1, k + MAX_SENDS_PER_TURN)
        window_start = stats.window_start_ns
        while k < due:
            client = order[k % n]
            ts = monotonic_ns()
            send_move(client, k & 1023, ts)
            if ts >= window_start:
                stats.sent += 1
                stats.expected += client.room_size
            k += 1
        delay = (start_ns + k * interval_ns - monotonic_ns()) / 1e9
        # Sends go out in ticks of at least TICK_S: spinning on shorter waits would burn the
        # load generator's CPU. Each move is still stamped at its own send, so latency is exact.
        await asyncio.sleep(max(delay, TICK_S))


def _cpu_pct_by_process(before: TreeSample, after: TreeSample, elapsed: float) -> dict[str, float]:
    # Several server processes (roomwire on Redis: launcher, worker, gateway): each one's share.
    return {
        f"{process_label(pid)} ({pid})": round(100 * (cpu - before.cpu_s_by_pid.get(pid, cpu)) / elapsed, 1)
        for pid, cpu in after.cpu_s_by_pid.items()
    }


class CpuWindow:
    """CPU used during one measurement window: the server's tree, the engine, this process, others.

    With `engine_pid` (the Redis server), its CPU is reported apart and not counted as noise.
    """

    def __init__(self, server_pid: int | None, engine_pid: int | None = None) -> None:
        self.server_pid, self.engine_pid = server_pid, engine_pid
        self.server0 = sample_tree(server_pid) if server_pid else None
        self.engine0 = _engine_cpu_s(engine_pid)
        self.self0, self.user0 = _cpu_self_s(), _cpu_self_user_s()
        self.busy0, self.steal0 = machine_busy_s()
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """Figures of the window: its duration, and each party's CPU in seconds and percent."""
        server1 = None
        if self.server0 is not None and self.server_pid is not None:
            server1 = sample_tree(self.server_pid, list(self.server0.pids))
        engine1 = _engine_cpu_s(self.engine_pid)
        self1, user1 = _cpu_self_s(), _cpu_self_user_s()
        busy1, steal1 = machine_busy_s()
        elapsed = time.monotonic() - self.t0
        figures: dict[str, Any] = {
            "duration_s": round(elapsed, 3),
            "loadgen_cpu_pct": round(100 * (self1 - self.self0) / elapsed, 1),
            "loadgen_user_cpu_pct": round(100 * (user1 - self.user0) / elapsed, 1),
            "steal_cpu_pct": round(100 * (steal1 - self.steal0) / elapsed, 1),
        }
        other_s = (busy1 - self.busy0) - (self1 - self.self0)
        if self.server0 is not None and server1 is not None:
            cpu = server1.cpu_s - self.server0.cpu_s
            figures.update(
                server_cpu_s=cpu,
                server_cpu_pct=round(100 * cpu / elapsed, 1),
                server_rss_mb=round(server1.rss_bytes / 2**20, 1),
                server_processes=len(server1.pids),
            )
            if len(server1.pids) > 1:
                figures["server_cpu_pct_by_process"] = _cpu_pct_by_process(self.server0, server1, elapsed)
            other_s -= cpu
        if self.engine0 is not None and engine1 is not None:
            figures["engine_cpu_s"] = engine1 - self.engine0
            figures["engine_cpu_pct"] = round(100 * figures["engine_cpu_s"] / elapsed, 1)
            other_s -= figures["engine_cpu_s"]
        # Anything else that ran on this machine meanwhile (other people's tests): noise to watch.
        figures["other_cpu_pct"] = round(max(0.0, 100 * other_s / elapsed), 1)
        return figures


def _per_1k(figures: dict[str, Any], work: int) -> None:
    # Server and engine CPU seconds per 1,000 units of work (deliveries), next to their totals.
    for who in ("server", "engine"):
        cpu = figures.get(f"{who}_cpu_s")
        if cpu is not None:
            figures[f"{who}_cpu_s"] = round(cpu, 3)
            figures[f"{who}_cpu_s_per_1k"] = (cpu / work * 1000) if work else float("nan")


async def measure_window(
    adapter: Adapter,
    order: list[Client],
    rate_per_client: float,
    warmup_s: float,
    duration_s: float,
    drain_s: float,
    server_pid: int | None,
    engine_pid: int | None = None,
) -> dict[str, Any]:
    """Send at `rate_per_client` for warmup + duration; figures cover the duration only.

    With `engine_pid` (the Redis server), its CPU is reported apart and not counted as noise.
    """
    stats = adapter.stats
    total_rate = rate_per_client * len(order)
    start_ns = time.monotonic_ns()
    window_ns = start_ns + int(warmup_s * 1e9)
    end_ns = window_ns + int(duration_s * 1e9)
    # Setup garbage is collected now and the survivors frozen, so no collection of them lands
    # inside the window and shows up as latency.
    gc.collect()
    gc.freeze()
    stats.begin_window(window_ns)
    closed_before = adapter.closed_count()
    sender = asyncio.create_task(_send_loop(adapter, order, total_rate, start_ns, end_ns, stats))
    try:
        await _sleep_until(window_ns)
        window = CpuWindow(server_pid, engine_pid)
        await _sleep_until(end_ns)
        cpu = window.stop()
        await sender
    finally:
        sender.cancel()
    stats.end_sending()
    # What has not arrived when the drain time is up is counted as lost.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stats.drained.wait(), drain_s)
    lat = sorted(stats.latencies_ns)
    received = stats.received
    elapsed = cpu["duration_s"]
    _per_1k(cpu, received)  # what arrived by the end of the drain: this window's deliveries
    return {
        "rate_per_client": rate_per_client,
        "connections": len(order),
        "target_send_per_s": round(total_rate, 1),
        "send_per_s": round(stats.sent / elapsed, 1),
        "expected": stats.expected,
        "received": received,
        "lost": stats.expected - received,
        "delivered_per_s": round(received / elapsed, 1),
        "p50_ms": _percentile(lat, 0.50),
        "p99_ms": _percentile(lat, 0.99),
        "p999_ms": _percentile(lat, 0.999),
        "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        "out_of_order": stats.out_of_order,
        "server_errors": stats.errors,
        "error_samples": list(stats.error_samples),
        "connections_closed": adapter.closed_count() - closed_before,
        "close_codes": adapter.close_codes(),
        **cpu,
    }


async def _open_rooms(adapter: Adapter, first: int, count: int, size: int) -> list[list[Client]]:
    return list(await asyncio.gather(*(adapter.open_room(first + i, size) for i in range(count))))


def _interleave(rooms: list[list[Client]]) -> list[Client]:
    # Consecutive sends go to different rooms, as independent players' would.
    width = max(len(r) for r in rooms)
    return [room[c] for c in range(width) for room in rooms if c < len(room)]


async def scenario_ping(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Sequential request → reply on one connection."""
    (client,) = (await _open_rooms(adapter, 0, 1, 1))[0]
    await adapter.start()
    for _ in range(args.warmup_count):
        await adapter.echo(client, time.monotonic_ns())
    rtts: list[int] = []
    gc.collect()
    gc.freeze()
    window = CpuWindow(args.server_pid, args.engine_pid)
    for _ in range(args.count):
        sent = time.monotonic_ns()
        arrived = await adapter.echo(client, sent)
        rtts.append(arrived - sent)
    cpu = window.stop()
    extra: dict[str, Any] = {}
    # The server's CPU per request → reply: on an idle machine, most of the round trip.
    for who in ("server", "engine"):
        if f"{who}_cpu_s" in cpu:
            extra[f"{who}_cpu_us_per_round_trip"] = round(cpu[f"{who}_cpu_s"] / len(rtts) * 1e6, 1)
    rtts.sort()
    return {
        **extra,
        "other_cpu_pct": cpu["other_cpu_pct"],
        "steal_cpu_pct": cpu["steal_cpu_pct"],
        "round_trips": len(rtts),
        "p50_us": _percentile(rtts, 0.5) * 1000,
        "p99_us": _percentile(rtts, 0.99) * 1000,
        "max_us": rtts[-1] / 1000,
        "per_s": round(len(rtts) / cpu["duration_s"], 1),
        "loadgen_cpu_pct": cpu["loadgen_cpu_pct"],
    }


async def scenario_lockstep(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """One move in flight: send it, wait until every client of its room has it, send the next.

    The server's CPU per delivery without the batching that concurrent load allows, and with
    far less noise than `broadcast` on a shared machine: bench/ab.py compares versions with it.
    """
    rooms = await _open_rooms(adapter, 0, args.rooms, args.clients)
    await adapter.start()
    order = _interleave(rooms)
    stats = adapter.stats
    stats.begin_window(0)
    stats.is_sending = False  # `drained` is set as soon as everything expected has arrived

    async def moves(count: int) -> None:
        for i in range(count):
            client = order[i % len(order)]
            stats.expected += client.room_size  # the sender gets its own move too
            stats.drained = asyncio.Event()
            adapter.send_move(client, i, time.monotonic_ns())
            try:
                await asyncio.wait_for(stats.drained.wait(), LOCKSTEP_TIMEOUT_S)
            except TimeoutError:
                raise RuntimeError(
                    f"move {i}: {stats.expected - stats.received} deliveries missing after "
                    f"{LOCKSTEP_TIMEOUT_S:.0f} s; server errors: {stats.error_samples}"
                ) from None

    await moves(args.warmup_count)
    gc.collect()
    gc.freeze()
    received0 = stats.received
    window = CpuWindow(args.server_pid, args.engine_pid)
    await moves(args.count)
    cpu = window.stop()
    deliveries = stats.received - received0
    _per_1k(cpu, deliveries)
    return {
        "moves": args.count,
        "deliveries": deliveries,
        "lost": stats.expected - stats.received,
        "out_of_order": stats.out_of_order,
        "server_errors": stats.errors,
        "moves_per_s": round(args.count / cpu["duration_s"], 1),
        "rooms": args.rooms,
        "clients_per_room": args.clients,
        **cpu,
    }


async def _measure_rooms(adapter: Adapter, rooms: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement window over every client of `rooms`, at the scenario's rate and timings."""
    return await measure_window(
        adapter,
        _interleave(rooms),
        args.rate,
        args.warmup,
        args.duration,
        args.drain,
        args.server_pid,
        args.engine_pid,
    )


async def scenario_broadcast(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """R rooms x C clients at F moves/s per client."""
    rooms = await _open_rooms(adapter, 0, args.rooms, args.clients)
    await adapter.start()
    result = await _measure_rooms(adapter, rooms, args)
    result.update(rooms=args.rooms, clients_per_room=args.clients)
    return result


def _passes(step: dict[str, Any], p99_limit_ms: float) -> bool:
    return bool(
        step["lost"] == 0
        and step["connections_closed"] == 0
        and step["p99_ms"] < p99_limit_ms
        and step["send_per_s"] >= 0.95 * step["target_send_per_s"]
    )


async def _quiesce(stats: Stats, limit_s: float = 15.0) -> None:
    # After a failed step the server may still be flushing a backlog: wait until arrivals stop.
    deadline = time.monotonic() + limit_s
    last = -1
    while time.monotonic() < deadline and stats.received != last:
        last = stats.received
        await asyncio.sleep(0.3)


async def scenario_sweep(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Raise F until the room broadcast stops keeping up; report the best passing delivered rate."""
    rooms = await _open_rooms(adapter, 0, args.rooms, args.clients)
    await adapter.start()
    order = _interleave(rooms)
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    fail_rate: float | None = None
    limited_by = "server"

    async def step(rate: float) -> bool:
        nonlocal best, limited_by
        for attempt in range(1 + args.sweep_retries):
            res = await measure_window(
                adapter,
                order,
                rate,
                args.sweep_warmup,
                args.duration,
                args.drain,
                args.server_pid,
                args.engine_pid,
            )
            res["passed"] = ok = _passes(res, args.p99_limit_ms)
            res["attempt"] = attempt
            steps.append(res)
            print(
                f"  sweep F={rate:g}/s delivered={res['delivered_per_s']:.0f}/s p99={res['p99_ms']:.2f} ms "
                f"lost={res['lost']} loadgen={res['loadgen_cpu_pct']}% "
                f"server={res.get('server_cpu_pct', '?')}% other={res['other_cpu_pct']}% "
                f"{'ok' if ok else 'FAIL'}",
                file=sys.stderr,
                flush=True,
            )
            # Only a latency failure is retried: on a shared machine a neighbour's burst can push
            # p99 over the limit once; a loss or a dropped connection is the server's own doing.
            if ok or res["lost"] or res["connections_closed"]:
                break
            await _quiesce(adapter.stats)
        if ok and (best is None or res["delivered_per_s"] > best["delivered_per_s"]):
            best = res
        if res["loadgen_cpu_pct"] >= 90 or res["send_per_s"] < 0.95 * res["target_send_per_s"]:
            limited_by = "loadgen"
        if not ok:
            await _quiesce(adapter.stats)
        return ok

    rate = args.sweep_start
    pass_rate = 0.0
    if await step(rate):
        pass_rate = rate
        while limited_by != "loadgen" and rate * 2 <= args.sweep_max:
            rate *= 2
            if not await step(rate):
                fail_rate = rate
                break
            pass_rate = rate
    else:
        # Too much already: halve until a step passes, then bisect upwards from there.
        fail_rate = rate
        while rate / 2 >= args.sweep_min and not adapter.closed_count():
            rate /= 2
            if await step(rate):
                pass_rate = rate
                break
            fail_rate = rate
    if fail_rate is not None and pass_rate > 0 and adapter.closed_count() == 0:
        low, high = pass_rate, fail_rate
        for _ in range(args.sweep_refine):
            mid = round((low + high) / 2, 2)
            if mid in (low, high):
                break
            if await step(mid):
                low = mid
            else:
                high = mid
            if adapter.closed_count():
                break
    return {
        "rooms": args.rooms,
        "clients_per_room": args.clients,
        "p99_limit_ms": args.p99_limit_ms,
        "max_delivered_per_s": best["delivered_per_s"] if best else 0.0,
        "max_rate_per_client": best["rate_per_client"] if best else 0.0,
        "best": best,
        "limited_by": limited_by if fail_rate is None or limited_by == "loadgen" else "server",
        "hit_sweep_max": fail_rate is None and limited_by != "loadgen",
        "other_cpu_pct": max((s.get("other_cpu_pct", 0.0) for s in steps), default=0.0),
        "steal_cpu_pct": max((s.get("steal_cpu_pct", 0.0) for s in steps), default=0.0),
        "steps": steps,
    }


async def scenario_scale(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Many idle connections (memory per connection), then all sending at F/s."""
    warm_rooms = max(1, args.rooms // 20)
    rooms = await _open_rooms(adapter, 0, warm_rooms, args.clients)
    await asyncio.sleep(1.0)  # let the server settle before the baseline reading
    before = sample_tree(args.server_pid) if args.server_pid else None
    t0 = time.monotonic()
    rooms += await _open_rooms(adapter, warm_rooms, args.rooms - warm_rooms, args.clients)
    connect_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    after = sample_tree(args.server_pid) if args.server_pid else None
    added = sum(len(r) for r in rooms[warm_rooms:])
    await adapter.start()
    result = await _measure_rooms(adapter, rooms, args)
    result.update(
        rooms=args.rooms,
        clients_per_room=args.clients,
        connect_per_s=round(added / connect_s, 1),
    )
    if before is not None and after is not None:
        result.update(
            idle_rss_mb=round(after.rss_bytes / 2**20, 1),
            rss_per_connection_kb=round((after.rss_bytes - before.rss_bytes) / added / 1024, 2),
        )
    return result


SCENARIOS = {
    "ping": scenario_ping,
    "broadcast": scenario_broadcast,
    "sweep": scenario_sweep,
    "scale": scenario_scale,
    "lockstep": scenario_lockstep,
}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run one scenario and return its figures."""
    stats = Stats()
    adapter = make_adapter(args.target, args.host, args.port, stats, codec=args.codec)
    try:
        result = await SCENARIOS[args.scenario](adapter, args)
    finally:
        await adapter.aclose()
    result.update(scenario=args.scenario, target=args.target)
    return result


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the load generator."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--target", choices=["roomwire", "roomwire-redis", "bare", "socketio", "colyseus"], required=True
    )
    p.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-pid", type=int, default=None, help="server process (its tree is measured)")
    p.add_argument(
        "--engine-pid", type=int, default=None, help="engine process (Redis): its CPU is reported apart"
    )
    p.add_argument("--codec", choices=["json", "msgpack"], default="json", help="roomwire only")
    p.add_argument("--rooms", type=int, default=10)
    p.add_argument("--clients", type=int, default=10, help="clients per room")
    p.add_argument("--rate", type=float, default=10.0, help="moves per second per client")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of sending before measuring")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured")
    p.add_argument("--drain", type=float, default=2.0, help="seconds to wait for late deliveries")
    p.add_argument("--count", type=int, default=2000, help="ping: measured round trips; lockstep: moves")
    p.add_argument("--warmup-count", type=int, default=200, help="ping, lockstep: the same before measuring")
    p.add_argument("--sweep-start", type=float, default=10.0, help="sweep: first F")
    p.add_argument("--sweep-min", type=float, default=0.5, help="sweep: lowest F tried")
    p.add_argument("--sweep-max", type=float, default=5000.0, help="sweep: highest F tried")
    p.add_argument("--sweep-refine", type=int, default=2, help="sweep: bisection steps after a failure")
    p.add_argument("--sweep-retries", type=int, default=1, help="sweep: reruns of a step failed on p99")
    p.add_argument("--sweep-warmup", type=float, default=1.0, help="sweep: warmup seconds per step")
    p.add_argument("--p99-limit-ms", type=float, default=50.0)
    p.add_argument("--out", default=None, help="write the JSON result here (default: stdout)")
    return p.parse_args(argv)


if __name__ == "__main__":
    cli = parse_args()
    _raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        figures = asyncio.run(main(cli))
    else:
        figures = uvloop.run(main(cli))
    text = json.dumps(figures, indent=2, allow_nan=True)
    if cli.out:
        with open(cli.out, "w") as f:
            f.write(text)
    else:
        print(text)
