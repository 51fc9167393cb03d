"""roomwire on Redis as two processes under one parent: the benchmark's `roomwire-redis` server.

    python bench/redis_pair.py serve --backend URL --port P --logs PREFIX [--roomwire EXE] [APP]
    python bench/redis_pair.py drop --backend URL      # delete the namespace, print keys left
    python bench/redis_pair.py check --backend URL     # Redis reachable? prints its server pid

`serve` starts `roomwire serve APP --role worker`, waits until it runs, then `roomwire serve APP
--role gateway --port P`, both on the same backend URL and token secret (ROOMWIRE_SECRET, random
when unset, passed through the environment so it stays out of `ps`). It stays their parent, so
the harness measures CPU and RSS of both as one process tree and stops both with one signal to
the process group. When either child exits on its own, the other is stopped and `serve` exits
non-zero; on SIGTERM/SIGINT both are stopped (SIGKILL after a grace period).

With `--worker-cpu N` the worker is pinned to CPU N; the gateway keeps this process's CPUs.

`drop` and `check` import roomwire, so run this file with the project's venv Python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlsplit

BENCH = Path(__file__).resolve().parent
READY_MARK = "running app"  # what `roomwire serve --role worker` prints once its worker runs
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 4.0


class _Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        # Same process group as this parent: the harness's killpg reaches every process.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while READY_MARK not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} before running: see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not running after {START_TIMEOUT_S:.0f} s: see {log}")
        time.sleep(0.05)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(args: argparse.Namespace) -> int:
    """Run the worker and the gateway until signalled or until one of them exits."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    env = dict(os.environ)
    env.setdefault("ROOMWIRE_SECRET", secrets.token_hex(24))
    common = [args.roomwire, "serve", args.app, "--backend", args.backend, "--log-level", args.log_level]
    worker_log = Path(f"{args.logs}.worker.log")
    gateway_log = Path(f"{args.logs}.gateway.log")
    procs: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        worker = _start([*common, "--role", "worker"], worker_log, env)
        procs.append(worker)
        if args.worker_cpu is not None:
            os.sched_setaffinity(worker.pid, {args.worker_cpu})  # before it takes any load
        _wait_ready(worker, worker_log)
        gateway_argv = [*common, "--role", "gateway", "--host", args.host, "--port", str(args.port)]
        procs.append(_start(gateway_argv, gateway_log, env))
        print(f"worker pid {worker.pid}, gateway pid {procs[1].pid} on {args.host}:{args.port}", flush=True)
        # Block until a child ends (no polling: this parent's CPU counts in the measured tree).
        pid, wait_status = os.wait()
        role = "worker" if pid == worker.pid else "gateway"
        print(f"{role} exited with {os.waitstatus_to_exitcode(wait_status)} while serving", flush=True)
        return 1
    except _Stop:
        status = 0
    except RuntimeError as exc:
        print(exc, flush=True)
        status = 1
    finally:
        # Signals arriving now must not interrupt the stopping itself.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_all(procs)
    return status


def _namespace(url: str) -> str:
    return (parse_qs(urlsplit(url).query).get("namespace") or ["rw"])[0]


async def _drop(url: str) -> int:
    from redis.asyncio import Redis

    from roomwire.backends import backend_from_url

    backend = backend_from_url(url)
    await backend.open()
    try:
        await backend.drop_all()
    finally:
        await backend.aclose()
    # Count what is left under the namespace, straight from Redis, to prove the drop.
    parts = urlsplit(url)
    client = Redis(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=int(parts.path[1:] or 0))
    try:
        left = [key async for key in client.scan_iter(match=f"{_namespace(url)}:*", count=1000)]
    finally:
        await client.aclose()
    return len(left)


async def _check(url: str) -> int:
    from redis.asyncio import Redis

    parts = urlsplit(url)
    client = Redis(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, socket_timeout=5)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    print(f"{info['process_id']} {info['redis_version']}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the pair launcher."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run a worker and a gateway")
    s.add_argument("app", nargs="?", default=str(BENCH / "apps" / "broadcast_app.py"))
    s.add_argument("--backend", required=True, help="redis://HOST:PORT/DB?namespace=...")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--roomwire", default=str(Path(sys.executable).parent / "roomwire"))
    s.add_argument("--logs", required=True, help="log path prefix: PREFIX.worker.log, PREFIX.gateway.log")
    s.add_argument("--log-level", default="warning")
    s.add_argument(
        "--worker-cpu",
        type=int,
        default=None,
        help="pin the worker to this CPU (default: this process's CPUs)",
    )
    for name in ("drop", "check"):
        sub.add_parser(name).add_argument("--backend", required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to serve, drop or check."""
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "check":
        return asyncio.run(_check(args.backend))
    left = asyncio.run(_drop(args.backend))
    print(f"dropped namespace {_namespace(args.backend)!r}: {left} keys left")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
