"""What the strict durability options cost per commit (docs/backends.md, "Durability").

    .venv/bin/python bench/durability_cost.py [--commits 500]

Commits one small step (one event, a 200-byte snapshot) at a time, awaiting each, as a room's
executor does, and prints the mean and p99 time per commit for:

* SQLite, `synchronous=normal` (default) and `synchronous=full`, in a temporary file;
* Redis on private servers started on free ports (a primary with a replica; the shared Redis is
  never touched): AOF `appendfsync everysec` (the usual setting), `appendfsync always`, and
  everysec with `wait_replicas=1` (WAIT for the replica after each commit).

Numbers depend on the disk (fsync) and the machine's load: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))

from conformance_kit import create_input, events, record, room_id, step

from roomwire.backends import backend_from_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, commits: int) -> tuple[float, float]:
    """Mean and p99 ms per awaited commit on the backend at `url`."""
    backend = backend_from_url(url, namespace="durability-cost")
    await backend.open()
    try:
        rid = room_id()
        await backend.create_room(record(rid), create_input())
        epoch = await backend.acquire_lease(rid, "bench", 600)
        assert epoch is not None
        times: list[float] = []
        for seq in range(1, commits + 1):
            started = time.perf_counter()
            await backend.commit(rid, epoch, step(1, events(seq, 1), snapshot=b"x" * 200), history=64)
            times.append((time.perf_counter() - started) * 1000)
        await backend.delete_room(rid)
    finally:
        await backend.aclose()
    times.sort()
    return sum(times) / len(times), times[int(0.99 * (len(times) - 1))]


def start_redis(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ping = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, check=False)
        if ping.stdout.strip() == b"PONG":
            return proc
        time.sleep(0.05)  # the server is starting
    proc.kill()
    raise SystemExit(f"redis-server on {port} did not start")


def wait_for_replica(port: int) -> None:
    """Until the primary on `port` has one replica online (its first sync done)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = subprocess.run(
            ["redis-cli", "-p", str(port), "INFO", "replication"], capture_output=True, check=False
        )
        if b"state=online" in info.stdout:
            return
        time.sleep(0.1)  # the replica is syncing
    raise SystemExit("the replica did not come online within 30 s")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for sync in ("normal", "full"):
            url = f"sqlite:///{base / f'{sync}.db'}?synchronous={sync}"
            rows.append((f"SQLite synchronous={sync}", *await measure(url, args.commits)))
        if shutil.which("redis-server"):
            p_port, r_port = _free_port(), _free_port()
            primary = start_redis(base / "p", p_port, "--appendonly", "yes", "--appendfsync", "everysec")
            replica = start_redis(base / "r", r_port, "--replicaof", "127.0.0.1", str(p_port))
            try:
                wait_for_replica(p_port)
                url = f"redis://127.0.0.1:{p_port}/0"
                rows.append(("Redis AOF everysec", *await measure(url, args.commits)))
                wait_url = f"{url}?wait_replicas=1&wait_timeout_ms=5000"
                rows.append(("Redis AOF everysec + WAIT 1 replica", *await measure(wait_url, args.commits)))
                always = ["redis-cli", "-p", str(p_port), "CONFIG", "SET", "appendfsync", "always"]
                await asyncio.to_thread(subprocess.run, always, check=True, capture_output=True)
                rows.append(("Redis AOF always", *await measure(url, args.commits)))
            finally:
                replica.terminate()
                primary.terminate()
                replica.wait(10)
                primary.wait(10)
    print(f"| setting | mean ms per commit | p99 ms | ({args.commits} commits) |")
    print("|---|---|---|---|")
    for name, mean, p99 in rows:
        print(f"| {name} | {mean:.3f} | {p99:.3f} | |")


if __name__ == "__main__":
    asyncio.run(main())
