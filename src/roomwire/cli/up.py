"""`roomwire up`: one supervisor that runs gateways and generic workers on one machine.

* Gateways are `roomwire serve APP.py --role gateway` on ports PORT, PORT+1, ...: a gateway
  serves the lobby routes of the files it is started with (it does not load a deployed bundle
  yet), so `up` needs APP.py for them. Workers are generic (`roomwire serve --role worker`, no
  app): each runs the deployed versions that rooms need, one child interpreter per version.
* A process that exits while it should run is started again after a backoff (0.5 s doubling to
  30 s; reset once it has run for 30 s), and at most RESTARTS_PER_MINUTE times a minute per
  process: beyond that the restart waits, and the wait is logged.
* Every CHECK_S (and, with no worker running, at once when input arrives for a room) the load
  is read from the engine (rooms awake, `rooms_to_run`, worker reports) and the worker count
  set by the pure policy in cli/scaling.py; scaling down stops the worker that reports the
  fewest rooms (SIGTERM: its rooms commit and are released, and another worker or a later one
  takes them).
* SIGINT/SIGTERM: gateways stop first (clients get close 1001 and resume on another machine's
  gateway; none of theirs is served by a worker about to go), then workers drain (rooms commit
  and release their leases), each SIGKILLed after STOP_S.

Children die with the supervisor (PR_SET_PDEATHSIG on Linux), so a killed `up` leaves none behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from roomwire.backends.base import Backend
from roomwire.cli.generic import _die_with_parent
from roomwire.cli.scaling import Load, ScalePolicy, decide, wanted
from roomwire.cli.status import read_status
from roomwire.errors import BackendError

__all__ = ["Restarts", "Supervisor", "UpConfig", "read_load"]

log = logging.getLogger("roomwire.up")

CHECK_S = 0.5  # how often the load is read and dead processes looked for
STOP_S = 15.0  # SIGTERM, then SIGKILL after this
BACKOFF_S = (0.5, 30.0)  # first and largest wait before a restart; reset after running BACKOFF_S[1]
RESTARTS_PER_MINUTE = 5  # with the backoff, a crash loop reaches it in about 8 s


@dataclass
class Restarts:
    """When a process that keeps exiting may start again: backoff, and a cap per minute (pure)."""

    per_minute: int = RESTARTS_PER_MINUTE
    backoff_s: tuple[float, float] = BACKOFF_S
    failures: int = 0
    not_before: float = 0.0
    starts: deque[float] = field(default_factory=deque)  # times of the restarts in the last minute

    def exited(self, now: float, ran_s: float) -> float:
        """Record an exit after running ran_s seconds; returns the backoff before the next start."""
        if ran_s > self.backoff_s[1]:
            self.failures = 0  # it ran for a good while: a fresh failure, not a crash loop
        wait_s = min(self.backoff_s[1], self.backoff_s[0] * 2.0**self.failures)
        self.failures += 1
        self.not_before = now + wait_s
        return wait_s

    def capped(self, now: float) -> bool:
        """Whether the restarts of the last minute have reached per_minute."""
        while self.starts and now - self.starts[0] >= 60.0:
            self.starts.popleft()
        return len(self.starts) >= self.per_minute

    def wait_s(self, now: float) -> float:
        """Seconds until a restart may happen (0: now), by the backoff and the per-minute cap."""
        cap_s = 60.0 - (now - self.starts[0]) if self.capped(now) else 0.0
        return max(0.0, self.not_before - now, cap_s)

    def started(self, now: float) -> None:
        """Record a restart."""
        self.starts.append(now)


Role = Literal["gateway", "worker"]


@dataclass(frozen=True)
class UpConfig:
    """What `roomwire up` was asked to run."""

    backend_url: str
    secret: str
    policy: ScalePolicy
    app_path: str | None = None
    app_name: str | None = None
    gateways: int = 1
    host: str = "0.0.0.0"
    port: int = 8000
    lease_ttl_s: float = 2.0
    log_level: str = "info"
    name: str = field(default_factory=lambda: f"up-{os.urandom(2).hex()}")


@dataclass
class _Proc:
    """One supervised process slot: it keeps its name and arguments across restarts."""

    name: str
    role: Role
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: Restarts = field(default_factory=Restarts)
    capped: bool = False  # the per-minute cap is holding a restart back (logged once)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


async def read_load(backend: Backend) -> Load:
    """The load `wanted` scales on, read from the engine."""
    waiting = set(await backend.rooms_to_run())
    found = await read_status(backend)
    awake = sum(1 for r in found.rooms if r.state != "hibernating" or r.id in waiting)
    owned = sum(w.rooms for w in found.workers)
    return Load(awake=awake, waiting=len(waiting), owned=owned)


async def _rooms_by_worker(backend: Backend) -> dict[str, int]:
    return {w.id: w.rooms for w in (await read_status(backend)).workers}


@dataclass
class Supervisor:
    """Runs the gateways and scales the workers of one machine (see the module docstring)."""

    config: UpConfig
    backend: Backend
    gateways: list[_Proc] = field(default_factory=list)
    workers: dict[str, _Proc] = field(default_factory=dict)  # by worker id
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _calm_since: float | None = None
    _engine_down: bool = False

    async def run(self, stop: asyncio.Event) -> None:
        """Supervise until `stop` is set; then stop gateways, then workers."""
        c = self.config
        for i in range(c.gateways):
            argv = ["serve", c.app_path or "", "--role", "gateway", "--host", c.host]
            argv += ["--port", str(c.port + i), "--lease-ttl", str(c.lease_ttl_s)]
            if c.app_name:
                argv += ["--app", c.app_name]
            gateway = _Proc(f"{c.name}-g{i + 1}", "gateway", argv)
            self.gateways.append(gateway)
            await self._start(gateway)
        unwatch = self.backend.watch_inputs(self._on_input)
        try:
            while not stop.is_set():
                await self.tick()
                # A periodic look too: deaths and hibernations send no event.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), CHECK_S)
                self._wake.clear()
        finally:
            unwatch()
            await self.shutdown()

    def _on_input(self, room_id: str) -> None:
        # Only a pool at zero must react at once (a cold start); with workers running, the
        # periodic look suffices, and reading the load on every input would load the engine.
        if not self.workers:
            self._wake.set()

    async def tick(self) -> None:
        """Restart what died, then set the worker count from the load."""
        for proc in [*self.gateways, *self.workers.values()]:
            if not proc.running:
                await self._restart(proc)
        try:
            load = await read_load(self.backend)
        except BackendError as exc:
            if not self._engine_down:  # once per outage
                log.warning("up: cannot read the load (%s); keeping %d workers", exc, len(self.workers))
            self._engine_down = True
            return
        self._engine_down = False
        await self.scale(load)

    async def scale(self, load: Load) -> None:
        """Start or stop workers so their number follows the policy."""
        policy = self.config.policy
        running = len(self.workers)
        want = wanted(load, policy)
        now = time.monotonic()
        if want >= running:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now
        calm_s = 0.0 if self._calm_since is None else now - self._calm_since
        target = decide(want, running, calm_s, policy)
        if target == running:
            return
        _say(
            f"up: workers {running} -> {target} ({load.awake} rooms awake, {load.waiting} waiting, "
            f"{load.owned} owned)"
        )
        while len(self.workers) < target:
            await self._start(self._new_worker())
        if len(self.workers) > target:
            self._calm_since = None  # the next step down waits a full period again
            await self._stop_idlest(len(self.workers) - target)

    def _new_worker(self) -> _Proc:
        c = self.config
        slot = next(n for n in range(1, len(self.workers) + 2) if f"{c.name}-w{n}" not in self.workers)
        worker_id = f"{c.name}-w{slot}"
        argv = ["serve", "--role", "worker", "--worker-id", worker_id, "--lease-ttl", str(c.lease_ttl_s)]
        proc = _Proc(worker_id, "worker", argv)
        self.workers[worker_id] = proc
        return proc

    async def _stop_idlest(self, count: int) -> None:
        try:
            reported = await _rooms_by_worker(self.backend)
        except BackendError:
            reported = {}

        def rooms(worker_id: str) -> int:
            # A generic worker's children report as `<worker id>-<version>`.
            return sum(n for wid, n in reported.items() if wid.startswith(f"{worker_id}-"))

        # Fewest rooms first; among equals the newest slot, so w1 stays the long-lived one.
        order = sorted(self.workers, key=lambda wid: (rooms(wid), -int(wid.rsplit("w", 1)[1])))
        victims = [self.workers.pop(wid) for wid in order[:count]]
        await asyncio.gather(*(self._terminate(p, "scaled down") for p in victims))

    async def _start(self, proc: _Proc) -> None:
        c = self.config
        argv = [sys.executable, "-m", "roomwire.cli.main", *proc.argv]
        argv += ["--backend", c.backend_url, "--log-level", c.log_level]
        env = {**os.environ, "ROOMWIRE_SECRET": c.secret}  # not in argv: `ps` shows argv
        try:
            # A session of its own: Ctrl-C in a terminal signals the whole foreground group, which
            # would stop workers together with gateways instead of after them.
            proc.process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:  # out of processes or memory: retried with backoff
            proc.process = None
            wait_s = proc.restarts.exited(time.monotonic(), ran_s=0.0)
            _say(f"up: {proc.role} {proc.name} cannot start ({exc}); retrying in {wait_s:.1f} s")
            return
        proc.started_at = time.monotonic()
        _say(f"up: {proc.role} {proc.name} started (pid {proc.process.pid})")

    async def _restart(self, proc: _Proc) -> None:
        now = time.monotonic()
        if proc.process is not None:  # it died: count it, once
            status = proc.process.returncode
            proc.process = None
            wait_s = proc.restarts.exited(now, ran_s=now - proc.started_at)
            _say(f"up: {proc.role} {proc.name} exited with status {status}; restarting in {wait_s:.1f} s")
        wait_s = proc.restarts.wait_s(now)
        if wait_s > 0:
            if proc.restarts.capped(now) and not proc.capped:
                log.error(
                    "up: %s %s restarted %d times in a minute; next restart in %.0f s",
                    proc.role,
                    proc.name,
                    proc.restarts.per_minute,
                    wait_s,
                )
                proc.capped = True
            return
        proc.capped = False
        proc.restarts.started(now)
        await self._start(proc)

    async def shutdown(self) -> None:
        """Gateways first (clients resume elsewhere), then workers (rooms are released)."""
        gateways, self.gateways = self.gateways, []
        await asyncio.gather(*(self._terminate(p, "shutting down") for p in gateways))
        workers = list(self.workers.values())
        self.workers.clear()
        await asyncio.gather(*(self._terminate(p, "shutting down") for p in workers))

    async def _terminate(self, proc: _Proc, why: str) -> None:
        process = proc.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        _say(f"up: {proc.role} {proc.name} stopped ({why})")


def _say(line: str) -> None:
    # The supervisor's own lines go to stderr next to its children's logs, one line each.
    print(line, file=sys.stderr, flush=True)
