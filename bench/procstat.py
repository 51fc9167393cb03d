"""CPU time and resident memory of a process tree, read from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class TreeSample:
    """One reading of a process tree: CPU seconds (user + system) and resident bytes, summed."""

    cpu_s: float
    rss_bytes: int
    pids: tuple[int, ...]
    cpu_s_by_pid: dict[int, float] = field(default_factory=dict)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:  # the process ended between listing and reading: it no longer counts
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))  # fields[1] is ppid
    return children


def tree_pids(root: int) -> list[int]:
    """The root process and all of its descendants that are alive now."""
    children = _children_by_parent()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except OSError:
        return 0


def sample_tree(root: int, pids: list[int] | None = None) -> TreeSample:
    """Sum CPU seconds and RSS over `pids` (default: the live tree under `root`)."""
    if pids is None:
        pids = tree_pids(root)
    by_pid: dict[int, float] = {}
    rss = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the ')' split: index 11 is utime and 12 stime (fields 14 and 15 of proc(5)).
        by_pid[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        rss += _rss_bytes(pid)
    return TreeSample(cpu_s=sum(by_pid.values()), rss_bytes=rss, pids=tuple(pids), cpu_s_by_pid=by_pid)


def process_label(pid: int) -> str:
    """A short name for a server process: its roomwire role when it has one, else its program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return str(pid)
    if "--role" in argv and argv.index("--role") + 1 < len(argv):
        return argv[argv.index("--role") + 1]
    scripts = [a for a in argv[1:] if a.endswith((".py", ".mjs"))] or argv[:1]
    return os.path.basename(scripts[0]) if scripts else str(pid)


def machine_busy_s() -> tuple[float, float]:
    """CPU seconds spent busy and stolen by the hypervisor, summed over every CPU, since boot."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]  # the first line sums every CPU
    ticks = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is inside user.
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
    steal = ticks[7] if len(ticks) > 7 else 0
    return busy / _CLK_TCK, steal / _CLK_TCK
