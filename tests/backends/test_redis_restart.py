"""RedisBackend across a restart of its Redis server (a private one, started on a free port).

The server persists with an fsync'ed append-only file, so what was committed before the restart
is still there after it: the backend's connections and its subscriber must simply carry on.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from conformance_kit import Collector, create_input, events, record, room_id, step

from roomwire.backends.records import Loaded, Published
from roomwire.backends.redis import RedisBackend
from roomwire.errors import BackendUnavailableError

START_S = 10.0  # bound for a server to come up; never reached when things work
STOP_S = 5.0


class Server:
    """One redis-server process; `start()` again after `stop()` reuses its port and files."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen[str] | None = None
        self.drain: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.drain = threading.Thread(target=self._drain, args=(self.process.stdout, ready))
        self.drain.start()
        if not ready.wait(START_S):
            pytest.fail(f"redis-server on port {self.port} did not start; see {self.directory}")

    def _drain(self, stream: IO[str], ready: threading.Event) -> None:
        with (self.directory / "server.log").open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                if "Ready to accept connections" in line:
                    ready.set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_S)
        if self.drain is not None:
            self.drain.join(timeout=STOP_S)


@pytest.fixture
def server(tmp_path: Path, skip_or_fail: Callable[[str], None]) -> Iterator[Server]:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed; it is needed to restart a private Redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = Server(tmp_path, port)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def test_backend_and_subscriber_carry_on_after_a_server_restart(server: Server) -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{server.port}/0", namespace="restart")
    await backend.open()
    got: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(rid := room_id(), got)
    try:
        await backend.create_room(record(rid), create_input())
        epoch = await backend.acquire_lease(rid, "w1", 60)
        assert epoch is not None
        await backend.commit(rid, epoch, step(1, events(1, 1)), history=10)
        await got.wait_for(1)

        server.stop()
        with pytest.raises(BackendUnavailableError):
            await backend.get_room(rid)
        server.start()

        # Pooled connections that the restart closed are replaced on use; the subscriber
        # resubscribes with backoff and reads whatever it missed meanwhile.
        await backend.commit(rid, epoch, step(1, events(2, 1)), history=10)
        await backend.commit(rid, epoch, step(1, events(3, 1)), history=10)
        items = await got.wait_for(3)
        assert await backend.load(rid) == Loaded(snapshot=b"state@1", inbound_offset=1, last_seq=3)
    finally:
        unsubscribe()
        await backend.aclose()
    assert [p.events for p in items] == [events(1, 1), events(2, 1), events(3, 1)]
