"""Processes, players and checks shared by the distributed tests.

Imported by module name: pytest's prepend import mode puts tests/distributed on sys.path.

* `Process`: one `roomwire serve` (or any) child process; its stderr is copied to a log file by
  a thread that also lets a test wait for a line.
* `Deployment`: gateways and workers of one app on one backend URL; `stop_all()` kills what is
  left (the fixtures call it in their finalizers).
* `Player`: one Python SDK client in one room, sending numbered `add`s and recording every event
  with its arrival time; `check_room` then proves nothing was lost, doubled or reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend
from roomwire.cli.status import Status, read_status
from roomwire_client import Client, ClientError, Room

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))  # the CLI of the venv running the tests
FAULT_APP = HERE / "fault_app.py"
ARENA_APP = ROOT / "examples" / "arena" / "app.py"
SECRET = "distributed-tests-secret-0123456789abcdef"
LEASE_TTL_S = 1.0
START_S = 30.0  # bound for a process to come up (two shared cores, neighbours' tests running)
STOP_S = 5.0
WAIT_S = 30.0  # bound for anything else a test waits on; never reached when things work
REQUEST_TIMEOUT_S = 30.0
ADD_INTERVAL_S = 0.02  # pacing of each player's adds: ~50 per second per player


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_namespace() -> str:
    """A namespace no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


class Process:
    """A child process whose stderr (and stdout) go to a log file, line by line."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, bufsize=1
        )
        assert self.popen.stdout is not None
        self._drain = threading.Thread(target=self._copy, args=(self.popen.stdout,), daemon=True)
        self._drain.start()

    def _copy(self, stream: IO[str]) -> None:
        with self.log.open("w", encoding="utf-8") as out:
            for line in stream:
                out.write(line)
                out.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:  # end of output: wake waiters so they see the exit
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def count(self, text: str) -> int:
        """How many output lines so far contain text."""
        with self._changed:
            return sum(text in line for line in self.lines)

    def wait_for_line(self, text: str | Callable[[str], bool], timeout_s: float = START_S) -> str:
        """Block until an output line contains text (or matches); fails if the process exits first."""
        matches = text if callable(text) else lambda line: text in line
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._drain.is_alive():
                    raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: no line with {text!r} in {timeout_s} s:\n{self.output()}"
                    )
                self._changed.wait(left)

    def output(self) -> str:
        """Everything the process printed so far (the tail, for failure messages)."""
        with self._changed:
            return "".join(self.lines[-60:])

    def send(self, sig: signal.Signals) -> None:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT, ...) if the process still runs."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        self.send(signal.SIGKILL)
        self.popen.wait(STOP_S)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case it is stopped), SIGKILL if it lingers; reap it."""
        if self.popen.poll() is None:
            self.send(signal.SIGCONT)
            self.send(signal.SIGTERM)
            try:
                self.popen.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self._drain.join(STOP_S)


async def wait_listening(proc: Process, port: int, timeout_s: float = START_S) -> None:
    """Poll the TCP port until it accepts (a gateway has no readiness signal but its port)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.output()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.name} did not listen on {port} in {timeout_s} s") from None
            await asyncio.sleep(0.05)  # nothing to wait on but the port itself
            continue
        writer.close()
        await writer.wait_closed()
        return


@dataclass
class Deployment:
    """Gateways and workers of one app on one backend URL (each its own `roomwire serve`)."""

    backend_url: str
    logs: Path
    app: Path = FAULT_APP
    lease_ttl_s: float = LEASE_TTL_S
    processes: list[Process] = field(default_factory=list)

    def _serve(self, name: str, role: str, *extra: str) -> Process:
        args = [ROOMWIRE, "serve", str(self.app), "--backend", self.backend_url, "--role", role]
        args += ["--secret", SECRET, "--lease-ttl", str(self.lease_ttl_s), *extra]
        proc = Process(name, args, self.logs / f"{name}.log")
        self.processes.append(proc)
        return proc

    async def start(self, gateways: int = 1, workers: int = 1) -> tuple[list[str], list[Process]]:
        """Start processes in parallel; returns the gateways' base URLs and the workers, all ready."""
        ports = [free_port() for _ in range(gateways)]
        gws = [self._serve(f"g{i + 1}", "gateway", "--port", str(p)) for i, p in enumerate(ports)]
        wks = [self.worker(f"w{i + 1}") for i in range(workers)]
        await asyncio.gather(*(wait_listening(g, p) for g, p in zip(gws, ports, strict=True)))
        await asyncio.gather(*(asyncio.to_thread(w.wait_for_line, f"worker {w.name} running") for w in wks))
        return [f"http://127.0.0.1:{p}" for p in ports], wks

    def worker(self, worker_id: str) -> Process:
        """Start one worker (not waited for; `wait_for_line(f"worker {id} running")` is)."""
        return self._serve(worker_id, "worker", "--worker-id", worker_id)

    def gateway(self, name: str) -> Process:
        """The gateway process called name."""
        return next(p for p in self.processes if p.name == name)

    def stop_all(self) -> None:
        """Stop every process still running (finalizers call this)."""
        for proc in self.processes:
            if proc.popen.poll() is None:
                proc.send(signal.SIGCONT)
                proc.send(signal.SIGTERM)
        for proc in self.processes:
            proc.stop()


# --- players --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One event as a client received it."""

    seq: int
    type: str
    data: Any
    at: float  # time.monotonic() on arrival


class Player:
    """One client in one room: sends numbered adds, records what it receives."""

    def __init__(self, name: str, client: Client, room: Room) -> None:
        self.name = name
        self.client = client
        self.room = room
        self.acked: list[int] = []
        self.failed: dict[int, str] = {}
        self.seen: list[Seen] = []
        self._arrived = asyncio.Condition()

    async def listen(self) -> None:
        """Record the room's events until the room is left."""
        with contextlib.suppress(ClientError):
            async for event in self.room.events():
                async with self._arrived:
                    self.seen.append(Seen(event.seq, event.type, event.data, time.monotonic()))
                    self._arrived.notify_all()

    async def send_adds(self, stop: asyncio.Event) -> None:
        """Send adds one at a time, each numbered; record which were acked and which failed."""
        k = 0
        while not stop.is_set():
            k += 1
            try:
                await self.room.request("add", {"c": self.name, "k": k}, timeout=REQUEST_TIMEOUT_S)
                self.acked.append(k)
            except ClientError as exc:
                self.failed[k] = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(TimeoutError):  # pacing: stop early if told to
                await asyncio.wait_for(stop.wait(), ADD_INTERVAL_S)

    async def wait_seen(self, check: Callable[[list[Seen]], bool], timeout_s: float = WAIT_S) -> None:
        """Wait until check(events seen so far) holds."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: check(self.seen))

    def adds_seen(self) -> int:
        """`added` events received so far."""
        return sum(e.type == "added" for e in self.seen)


@dataclass
class Load:
    """Players in several rooms sending adds until `finish()`."""

    players: dict[str, list[Player]]  # room id -> its players
    clients: list[Client]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    senders: list[asyncio.Task[None]] = field(default_factory=list)

    def all_players(self) -> list[Player]:
        """Every player of every room."""
        return [p for ps in self.players.values() for p in ps]

    def start(self) -> None:
        """Start listening and sending."""
        for player in self.all_players():
            self.tasks.append(asyncio.create_task(player.listen()))
            self.senders.append(asyncio.create_task(player.send_adds(self.stop)))

    async def until_each_room_saw(self, adds: int, timeout_s: float = WAIT_S) -> None:
        """Wait until every player saw `adds` more added events than it has now."""
        targets = [(p, p.adds_seen() + adds) for p in self.all_players()]
        await asyncio.gather(
            *(
                p.wait_seen(lambda seen, t=t: sum(e.type == "added" for e in seen) >= t, timeout_s)
                for p, t in targets
            )
        )

    async def finish(self) -> None:
        """Stop sending, wait for every answer, then until every player saw every applied add."""
        self.stop.set()
        async with asyncio.timeout(REQUEST_TIMEOUT_S + WAIT_S):
            await asyncio.gather(*self.senders)
        for players in self.players.values():
            wanted = {(p.name, k) for p in players for k in p.acked}

            def has_all(seen: list[Seen], wanted: set[tuple[str, int]] = wanted) -> bool:
                got = {(e.data["c"], e.data["k"]) for e in seen if e.type == "added"}
                return wanted <= got

            await asyncio.gather(*(p.wait_seen(has_all) for p in players))

    async def aclose(self) -> None:
        """Close every client and stop every task."""
        self.stop.set()
        for task in self.senders:
            task.cancel()
        for client in self.clients:
            await client.aclose()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.senders, *self.tasks, return_exceptions=True)


async def open_load(rooms: int, players_per_room: int, servers: Callable[[int], list[str]]) -> Load:
    """Create `rooms` counter rooms with `players_per_room` clients each (client i uses servers(i))."""
    load = Load(players={}, clients=[])
    n = 0
    try:
        for r in range(rooms):
            players: list[Player] = []
            room_id: str | None = None
            for p in range(players_per_room):
                client = Client(servers(n), reconnect_timeout_s=WAIT_S, connect_timeout_s=3.0)
                load.clients.append(client)
                n += 1
                await client.login_guest()
                room = await (client.create("counter") if room_id is None else client.join(room_id))
                room_id = room.id
                players.append(Player(f"r{r}p{p}", client, room))
            assert room_id is not None
            load.players[room_id] = players
    except BaseException:
        await load.aclose()
        raise
    return load


# --- checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomFigures:
    """What one room's clients saw, once checked."""

    room: str
    counter: int  # the room's final count of applied adds
    acked: int
    failed: int  # adds answered with an error (not applied, or unknown: see check_room)
    applied_failed: int  # of those, how many were applied after all
    ticks: int
    longest_silence_s: float  # the longest time between two events (around a fault: recovery)
    silence_ended_at: float  # time.monotonic() of the event that ended it


def check_room(room_id: str, players: list[Player]) -> RoomFigures:
    """Assert promise 1 and 2 for one room from what its players saw; return its figures.

    Every client saw the room's events without a gap or a duplicate, in the same order as every
    other client of the room; every acked add was applied once; none was applied twice; the
    counter equals the number of adds applied; the timer fired once per count.
    """
    for p in players:
        seqs = [e.seq for e in p.seen]
        assert seqs, f"{p.name} saw no events"
        expected = list(range(seqs[0], seqs[0] + len(seqs)))
        assert seqs == expected, f"{p.name}: gap or duplicate in seqs: {_first_difference(seqs, expected)}"
    start = max(p.seen[0].seq for p in players)
    end = min(p.seen[-1].seq for p in players)
    views = [[(e.seq, e.type, e.data) for e in p.seen if start <= e.seq <= end] for p in players]
    for p, view in zip(players[1:], views[1:], strict=True):
        assert view == views[0], f"{p.name} and {players[0].name} disagree on the order of room {room_id}"
    merged = sorted({e.seq: e for p in players for e in p.seen}.items())
    adds = [e for _, e in merged if e.type == "added"]
    counts = [e.data["n"] for e in adds]
    assert counts == list(range(1, len(counts) + 1)), f"room {room_id}: count not gapless from 1"
    applied_failed = 0
    for p in players:
        applied = [e.data["k"] for e in adds if e.data["c"] == p.name]
        twice = sorted({k for k in applied if applied.count(k) > 1})
        assert not twice, f"{p.name}: adds applied twice: {twice}"
        lost = sorted(set(p.acked) - set(applied))
        assert not lost, f"{p.name}: acked adds never applied (lost): {lost}"
        phantom = sorted(set(applied) - set(p.acked) - set(p.failed))
        assert not phantom, f"{p.name}: adds applied that were never sent: {phantom}"
        applied_failed += len(set(applied) & set(p.failed))
    acked = sum(len(p.acked) for p in players)
    assert len(counts) == acked + applied_failed
    ticks = [e.data["n"] for _, e in merged if e.type == "tick"]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), f"room {room_id}: a tick lost or doubled"
    arrivals = [e.at for e in players[0].seen]
    gaps = [(b - a, b) for a, b in itertools.pairwise(arrivals)]
    silence, ended = max(gaps, default=(0.0, 0.0))
    return RoomFigures(
        room=room_id,
        counter=counts[-1] if counts else 0,
        acked=acked,
        failed=sum(len(p.failed) for p in players),
        applied_failed=applied_failed,
        ticks=len(ticks),
        longest_silence_s=silence,
        silence_ended_at=ended,
    )


def _first_difference(got: list[int], want: list[int]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"at index {i}: seq {g}, expected {w} (around {got[max(0, i - 3) : i + 3]})"
    return f"lengths {len(got)} and {len(want)}"


# --- status ---------------------------------------------------------------------------------------


async def wait_status(
    backend: Backend, check: Callable[[Status], bool], what: str, timeout_s: float = WAIT_S
) -> Status:
    """Poll `read_status` until check holds (worker reports are written every second: no event)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await read_status(backend)
        if check(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status never showed {what}; last: {status}")
        await asyncio.sleep(0.1)


def owners(status: Status, rooms: Iterable[str]) -> dict[str, str | None]:
    """The worker running each of these rooms (None: not active)."""
    by_id = {r.id: r.worker for r in status.rooms}
    return {room: by_id.get(room) for room in rooms}


async def gather_bounded(*aws: Awaitable[Any], timeout_s: float = WAIT_S) -> list[Any]:
    """asyncio.gather under a time bound."""
    async with asyncio.timeout(timeout_s):
        return list(await asyncio.gather(*aws))


@contextlib.asynccontextmanager
async def opened_backend(url: str) -> AsyncIterator[Backend]:
    """The backend a URL names, open (for status reads and checks), closed afterwards."""
    backend = backend_from_url(url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.aclose()
