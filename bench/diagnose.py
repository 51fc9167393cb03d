"""Run `roomwire` with diagnostics: garbage-collection pauses, and on SIGUSR1 where memory went.

    .venv/bin/python bench/diagnose.py [--freeze] [--tracemalloc] -- run APP.py --port P --no-reload

Everything after `--` is roomwire's own command line. Run it with the project's venv Python.

- Every garbage collection longer than 2 ms is printed to stderr: generation, wall and CPU time,
  objects collected, and for generation 2 the number of objects the collector tracks.
- `--freeze`: import what serving imports, collect, then `gc.freeze()` before roomwire starts, so
  that start-up objects are never traversed again (what a `gc.freeze()` in roomwire would do).
- SIGUSR1 prints a census of the tracked objects (count, most common types, the largest
  containers) and, with `--tracemalloc`, the allocation sites that grew since the previous
  SIGUSR1: send one before opening connections and one after, and divide by their number.

docs/benchmarks.md reports what this found.
"""

from __future__ import annotations

import collections
import gc
import signal
import sys
import time
import tracemalloc
from types import FrameType
from typing import Any

PAUSE_MS = 2.0

_started: dict[str, float] = {}
_previous: list[tracemalloc.Snapshot] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started["wall"], _started["cpu"] = time.perf_counter(), time.thread_time()
        return
    wall_ms = (time.perf_counter() - _started["wall"]) * 1000
    if wall_ms > PAUSE_MS:
        cpu_ms = (time.thread_time() - _started["cpu"]) * 1000
        generation = info["generation"]
        tracked = f" tracked={len(gc.get_objects())}" if generation == 2 else ""
        print(
            f"gc gen{generation} {wall_ms:.1f} ms wall {cpu_ms:.1f} ms cpu "
            f"collected={info['collected']}{tracked}",
            file=sys.stderr,
            flush=True,
        )


def _largest_containers(objects: list[Any], top: int = 10) -> list[tuple[int, str, str]]:
    found = []
    for obj in objects:
        if isinstance(obj, list | dict | set | tuple | collections.deque) and len(obj) > 500:
            first = next(iter(obj.values() if isinstance(obj, dict) else obj), None)
            found.append((len(obj), type(obj).__name__, type(first).__name__))
    return sorted(found, reverse=True)[:top]


def _report(signum: int, frame: FrameType | None) -> None:
    objects = gc.get_objects()
    kinds = collections.Counter(type(o).__name__ for o in objects)
    print(f"census: {len(objects)} tracked objects; most common: {kinds.most_common(12)}", file=sys.stderr)
    for size, kind, first in _largest_containers(objects):
        print(f"  container: {kind} of {size} ({first} first)", file=sys.stderr)
    del objects
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, __file__)])
        if _previous:
            stats = snapshot.compare_to(_previous[-1], "lineno")
            print(f"allocations grew by {sum(s.size_diff for s in stats) / 1024:.0f} KiB:", file=sys.stderr)
            for stat in stats[:25]:
                print(
                    f"  {stat.size_diff / 1024:9.1f} KiB {stat.count_diff:7d} blocks  {stat.traceback}",
                    file=sys.stderr,
                )
        _previous[:] = [snapshot]
    sys.stderr.flush()


def main(argv: list[str]) -> None:
    """Install the diagnostics, then hand over to roomwire's command line."""
    own, rest = _split(argv)
    if "--tracemalloc" in own:
        tracemalloc.start(1)
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _report)
    from roomwire.cli.main import main as roomwire_main

    if "--freeze" in own:
        import msgspec  # noqa: F401  # what serving imports anyway, so it is frozen too
        import uvicorn  # noqa: F401

        import roomwire.backends.embedded
        import roomwire.gateway.asgi
        import roomwire.runtime.worker  # noqa: F401

        gc.collect()
        gc.freeze()
        print(f"frozen: {gc.get_freeze_count()} objects", file=sys.stderr, flush=True)
    sys.argv = ["roomwire", *rest]
    roomwire_main()


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: diagnose.py [--freeze] [--tracemalloc] -- ROOMWIRE ARGS")
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


if __name__ == "__main__":
    main(sys.argv[1:])
