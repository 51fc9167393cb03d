"""Generic workers: `roomwire serve --role worker --backend URL` without an app (issue #11, part 2).

The process claims no room itself. It watches which versions live rooms need and runs one child
interpreter per version (`roomwire serve <bundle folder>/<entry> --role worker`, pinned to that
version as every served worker is), so two versions' modules never share an interpreter:

* a version is needed while a room of it is live and not hibernating, or a hibernating one has
  pending input (`Backend.rooms_to_run`; `watch_inputs` makes the parent look at once, and the
  new child's first sweep finds the room through `rooms_to_run` too);
* its bundle is loaded from the engine and verified (`load_bundle`: unchanged since its deploy,
  and signed when ROOMWIRE_DEPLOY_KEY is set), its requirements checked against this
  environment, and its files written to a fresh temporary folder; a refused bundle is logged
  and retried with backoff, never run;
* a child that exits while its version is needed is started again with backoff (0.5 s doubling
  to 30 s); a child whose version has had no room for VERSION_IDLE_S is stopped (SIGTERM).

Children get the token secret through the environment and, on Linux, die with their parent
(PR_SET_PDEATHSIG), so a killed parent leaves no worker behind; its unpacked bundles stay in
`<temp dir>/roomwire-<worker id>/` until a worker with the same id starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from roomwire.backends.base import Backend
from roomwire.cli.deploy import write_files
from roomwire.errors import BackendError, DeployError
from roomwire.runtime.bundle import Bundle, check_requirements, pack
from roomwire.runtime.versions import load_bundle

log = logging.getLogger("roomwire.generic")

CHECK_S = 0.5  # how often needed versions are recomputed (input for an idle version wakes it at once)
VERSION_IDLE_S = 5.0  # a child whose version has had no live room this long is stopped
STOP_S = 10.0  # SIGTERM lets rooms commit and release; SIGKILL after this
BACKOFF_S = (0.5, 30.0)  # first and largest wait before restarting a failed version
_PR_SET_PDEATHSIG = 1


@dataclass
class _Child:
    """One version's worker process."""

    version: str
    process: asyncio.subprocess.Process
    folder: Path
    started_at: float
    idle_since: float | None = None


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class GenericWorker:
    """Runs one child worker per needed version (see the module docstring)."""

    backend: Backend
    backend_url: str
    worker_id: str
    secret: str
    lease_ttl_s: float
    deploy_key: str | None
    log_level: str = "info"
    idle_s: float = VERSION_IDLE_S
    children: dict[str, _Child] = field(default_factory=dict)
    _backoff: dict[str, _Backoff] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _entry: dict[str, tuple[str, str]] = field(default_factory=dict)  # version -> (entry, App attribute)
    _version_of: dict[str, str] = field(default_factory=dict)  # room id -> version, as last listed

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the needed versions running until `stop` is set; then stop every child."""
        # Bundles are unpacked under a folder named after this worker: one left behind by a killed
        # predecessor with the same id (worker ids are unique) is removed now.
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        unwatch = self.backend.watch_inputs(self._on_input)
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except BackendError:
                    log.warning("generic worker %s: engine unavailable; will retry", self.worker_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), CHECK_S)
                self._wake.clear()
        finally:
            unwatch()
            await asyncio.gather(*(self._stop(v, "shutting down") for v in list(self.children)))
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def folder(self) -> Path:
        """Where this worker unpacks bundles: `<temp dir>/roomwire-<worker id>/<version>-<random>`."""
        return Path(tempfile.gettempdir()) / f"roomwire-{self.worker_id}"

    def _on_input(self, room_id: str) -> None:
        # Look now only when the room may be of a version no child runs (a new room, or one of an
        # idle version): a full listing on every input would load the engine with the traffic.
        # A room of no version ("") is never run here (see reconcile).
        version = self._version_of.get(room_id)
        if version is None or (version and not self._running(version)):
            self._wake.set()

    async def reconcile(self) -> None:
        """Start children for needed versions and stop those of versions no room needs."""
        waiting = set(await self.backend.rooms_to_run())  # no live lease, and awake or with input
        needed: dict[str, int] = {}
        records = await self.backend.list_rooms()
        self._version_of = {r.id: r.code_version for r in records}
        for record in records:
            version = record.code_version
            if not version:
                continue  # from before versions: only a worker started with the app's files runs it
            if record.hibernating and record.id not in waiting:
                continue
            needed[version] = needed.get(version, 0) + 1
        now = time.monotonic()
        for version, rooms in needed.items():
            child = self.children.get(version)
            if child is not None:
                child.idle_since = None
            if not self._running(version):
                await self._start(version, rooms)
        for version, child in list(self.children.items()):
            if version in needed:
                continue
            if child.idle_since is None:
                child.idle_since = now
            elif now - child.idle_since >= self.idle_s:
                await self._stop(version, f"no room left for {self.idle_s:.0f} s")

    def _running(self, version: str) -> bool:
        child = self.children.get(version)
        return child is not None and child.process.returncode is None

    async def _start(self, version: str, rooms: int) -> None:
        previous = self.children.pop(version, None)
        backoff = self._backoff.setdefault(version, _Backoff())
        if previous is not None:  # it exited while its version was needed
            shutil.rmtree(previous.folder, ignore_errors=True)
            if time.monotonic() - previous.started_at > BACKOFF_S[1]:
                backoff.failures = 0  # it ran for a good while: a fresh failure, not a crash loop
            self._failed(version, f"child exited with status {previous.process.returncode}")
        if time.monotonic() < backoff.not_before:
            return
        try:
            folder = await self._unpack(version)
        except (DeployError, OSError) as exc:  # refused, or the disk is full: retried with backoff
            self._failed(version, str(exc))
            return
        entry, attribute = self._entry[version]
        cmd = [sys.executable, "-m", "roomwire.cli.main", "serve", str(folder / entry)]
        cmd += ["--backend", self.backend_url, "--role", "worker", "--lease-ttl", str(self.lease_ttl_s)]
        cmd += ["--worker-id", f"{self.worker_id}-{version[:7]}", "--log-level", self.log_level]
        if attribute:
            cmd += ["--app", attribute]
        env = {**os.environ, "ROOMWIRE_SECRET": self.secret}  # not in argv: `ps` shows argv
        try:
            process = await asyncio.create_subprocess_exec(
                *cmd, cwd=folder, env=env, preexec_fn=_die_with_parent if sys.platform == "linux" else None
            )
        except OSError as exc:  # out of processes or memory: retried with backoff
            shutil.rmtree(folder, ignore_errors=True)
            self._failed(version, f"cannot start a child: {exc}")
            return
        self.children[version] = _Child(version, process, folder, time.monotonic())
        print(
            f"generic worker {self.worker_id}: version {version} started in child {process.pid} "
            f"({rooms} rooms need it)",
            file=sys.stderr,
            flush=True,
        )

    async def _unpack(self, version: str) -> Path:
        bundle = await load_bundle(self.backend, version, self.deploy_key)
        problems = check_requirements(bundle.requirements)
        if problems:
            raise DeployError(
                f"version {version}: requirements.txt is not satisfied here: {'; '.join(problems)}"
            )
        folder = Path(tempfile.mkdtemp(prefix=f"{version}-", dir=self.folder))
        # The child computes its version from these files: it must be this one, or it would
        # (safely, but uselessly) wait for rooms of another version.
        if await asyncio.to_thread(_write_and_hash, bundle, folder) != version:
            shutil.rmtree(folder, ignore_errors=True)
            raise DeployError(f"version {version}: unpacked files hash to another version")
        self._entry[version] = (bundle.entry, bundle.attribute)
        return folder

    def _failed(self, version: str, why: str) -> None:
        backoff = self._backoff.setdefault(version, _Backoff())
        wait_s = min(BACKOFF_S[1], BACKOFF_S[0] * 2**backoff.failures)
        backoff.failures += 1
        backoff.not_before = time.monotonic() + wait_s
        log.error(
            "generic worker %s: version %s: %s; retrying in %.1f s", self.worker_id, version, why, wait_s
        )

    async def _stop(self, version: str, why: str) -> None:
        child = self.children.pop(version, None)
        if child is None:
            return
        if child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), STOP_S)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
        shutil.rmtree(child.folder, ignore_errors=True)
        print(
            f"generic worker {self.worker_id}: version {version} stopped ({why})",
            file=sys.stderr,
            flush=True,
        )


def _write_and_hash(bundle: Bundle, folder: Path) -> str:
    write_files(bundle, folder)
    return pack(folder / bundle.entry, bundle.attribute or None).version


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGTERM it when the parent dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
