"""What metrics cost on the hot path: prometheus-client's calls vs. plain ints, and a room's CPU per
message with and without roomwire's metrics (in-process executor on the embedded backend).

    .venv/bin/python bench/metrics_cost.py [--messages 20000] [--rounds 5]

A few seconds. The executor figure is CPU time (process_time) per message with one message per
commit (the worst case for per-commit work: lockstep play); the best of the rounds counts, since a
busy neighbour only ever makes a run look worse.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import timeit

from prometheus_client import CollectorRegistry, Counter
from prometheus_client import Histogram as PromHistogram

from roomwire import App
from roomwire.backends import backend_from_url
from roomwire.backends.records import CreateInput, JoinInput, MessageInput, RoomRecord
from roomwire.runtime.executor import RoomExecutor

try:
    from roomwire.runtime.metrics import Histogram, Metrics
except ImportError:  # a tree from before metrics (PYTHONPATH=<git archive of it>/src): --executor-only
    Histogram = Metrics = None  # type: ignore[assignment,misc]

N_CALLS = 500_000


def call_costs() -> dict[str, float]:
    """ns per call of each way to count one event."""
    registry = CollectorRegistry()
    counter = Counter("x_total", "x", ["type"], registry=registry)
    child = counter.labels("arena")
    prom_hist = PromHistogram("y_seconds", "y", registry=registry)
    ours = Histogram()

    class Box:
        __slots__ = ("n",)

        def __init__(self) -> None:
            self.n = 0

    box = Box()
    out = {
        "prometheus Counter.labels(t).inc()": timeit.timeit(
            lambda: counter.labels("arena").inc(), number=N_CALLS
        ),
        "prometheus child.inc()": timeit.timeit(child.inc, number=N_CALLS),
        "prometheus Histogram.observe()": timeit.timeit(lambda: prom_hist.observe(0.003), number=N_CALLS),
        "int += 1": timeit.timeit("box.n += 1", globals={"box": box}, number=N_CALLS),
        "roomwire Histogram.observe()": timeit.timeit(lambda: ours.observe(0.003), number=N_CALLS),
    }
    return {name: t / N_CALLS * 1e9 for name, t in out.items()}


def room_type() -> object:
    app = App("bench")
    arena = app.room("arena", rate_limit=None, idle_timeout_s=3600)

    @arena.message("move")
    def move(room: object, player: object, msg: object) -> None:
        room.broadcast("moved", n=1)  # type: ignore[attr-defined]

    arena.freeze()
    return arena


async def executor_cpu_per_message(messages: int, metrics: Metrics | None) -> float:
    """CPU seconds per message through a real RoomExecutor, one message per commit."""
    backend = backend_from_url("memory://")
    await backend.open()
    rt = room_type()
    record = RoomRecord(id="r1", type="arena", max_players=8, created_at=time.time())
    await backend.create_room(record, CreateInput(options={}, at=time.time()))
    epoch = await backend.acquire_lease("r1", "w", 60.0)
    assert epoch is not None
    loaded = await backend.load("r1")
    extra = {} if metrics is None else {"metrics": metrics}  # a tree from before metrics has no such argument
    ex = RoomExecutor(backend, rt, "r1", epoch, loaded, time.time, **extra)  # type: ignore[arg-type]
    task = asyncio.create_task(ex.run())
    await backend.append_input("r1", JoinInput("p1", {}, "s1", time.time(), False))
    while ex.inputs_total < 2:  # noqa: ASYNC110 - the executor has no event to await; polling is the point
        await asyncio.sleep(0)
    started = time.process_time()
    for i in range(messages):
        offset = backend.append_input_nowait(  # type: ignore[attr-defined]
            "r1", MessageInput("p1", "move", None, i + 1, time.time(), "s1")
        )
        while ex._committed_offset < offset:  # noqa: ASYNC110 - until this message's commit
            await asyncio.sleep(0)
    took = time.process_time() - started
    ex.stop(task)
    await task
    await backend.aclose()
    return took / messages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--executor-only", action="store_true", help="only the executor without metrics")
    args = p.parse_args()
    if args.executor_only or Metrics is None:
        runs = [asyncio.run(executor_cpu_per_message(args.messages, None)) for _ in range(args.rounds)]
        print(f"executor CPU per message: {min(runs) * 1e6:.2f} us (best of {args.rounds})")
        return
    for name, ns in call_costs().items():
        print(f"{name:40s} {ns:8.0f} ns")
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):
        off.append(asyncio.run(executor_cpu_per_message(args.messages, None)))
        on.append(asyncio.run(executor_cpu_per_message(args.messages, Metrics())))
    best_off, best_on = min(off), min(on)
    print(f"executor CPU per message, metrics off: {best_off * 1e6:.2f} us (best of {args.rounds})")
    print(f"executor CPU per message, metrics on:  {best_on * 1e6:.2f} us")
    print(f"ratio on/off: {best_on / best_off:.3f}  (+{(best_on - best_off) * 1e9:.0f} ns per message)")


if __name__ == "__main__":
    main()
