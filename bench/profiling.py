"""Sampling profiles of a server under load with py-spy, and where their time goes (stdlib only)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_HZ = 200
# Where every Python server enters its event loop; as a leaf it stands for time in uvloop's C
# code (callbacks' bookkeeping, system calls).
EVENT_LOOP_FRAME = "Runner.run (asyncio/runners.py)"


class Profiler:
    """py-spy attached to a running process, writing collapsed stacks until stopped."""

    def __init__(self, py_spy: Path, pid: int, out: Path, prefix: list[str]) -> None:
        self.out = out
        self._log = out.with_suffix(".log")
        with open(self._log, "wb") as log:
            # --nonblocking: the server is not paused for each sample, so its timing stays honest.
            self._proc = subprocess.Popen(
                [*prefix, str(py_spy), "record", "--pid", str(pid), "--rate", str(SAMPLE_HZ),
                 "--format", "raw", "--nonblocking", "--subprocesses", "-o", str(out)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self, timeout_s: float = 30.0) -> str | None:
        """Stop sampling (py-spy writes its file on SIGINT); returns an error text or None."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            return "py-spy did not stop"
        if not self.out.exists():
            with contextlib.suppress(OSError):
                return "py-spy wrote no profile: " + self._log.read_text(errors="replace").strip()[-300:]
            return "py-spy wrote no profile"
        return None


def _frame_name(frame: str) -> str:
    # py-spy frames read "function (path/to/module.py:LINE)": keep the function and the file's tail.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else where
    return f"{name} ({short})"


def _process_label(frame: str) -> str:
    # py-spy --subprocesses roots each stack at 'process PID:"command line"'.
    for role in ("gateway", "worker"):
        if f"--role {role}" in frame:
            return role
    return "launcher" if "redis_pair.py" in frame else "server"


def _tables(self_counts: Counter[str], total_counts: Counter[str], samples: int, top: int) -> dict[str, Any]:
    def table(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counts.most_common(top)] if samples else []

    return {"samples": samples, "top_self_pct": table(self_counts), "top_total_pct": table(total_counts)}


def summarize(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by own samples and by inclusive samples (below the event loop), as % of all samples.

    When several processes were sampled (roomwire on Redis: a gateway and a worker), the figures
    are also given per process under `by_process`, each as % of that process's samples.
    """
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    per_process: dict[str, tuple[Counter[str], Counter[str], list[int]]] = {}
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [f for f in stack.split(";") if f]
        # Children nest under their parent's process frame: the innermost one is the sampled process.
        label = next((_process_label(f) for f in reversed(raw) if f.startswith("process ")), "server")
        frames = [_frame_name(f) for f in raw if not f.startswith("process ")]
        if not frames:
            continue
        samples += count
        own, total, n = per_process.setdefault(label, (Counter(), Counter(), [0]))
        n[0] += count
        self_counts[frames[-1]] += count
        own[frames[-1]] += count
        # The start-up chain down to the event loop (click, uvloop.run, Runner.run) holds nearly
        # every sample: leave it out of the inclusive table so that the frames below it show.
        loop_at = max((i for i, name in enumerate(frames) if name == EVENT_LOOP_FRAME), default=-1)
        below = frames[loop_at + 1 :] or frames[-1:]  # a sample in the loop itself counts the loop
        for name in set(below):
            total_counts[name] += count
            total[name] += count
    result = _tables(self_counts, total_counts, samples, top)
    if len(per_process) > 1:
        result["by_process"] = {
            label: _tables(own, total, n[0], top) for label, (own, total, n) in sorted(per_process.items())
        }
    return result
