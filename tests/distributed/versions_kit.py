"""Two versions of one app, and the processes that run them (shared by the version tests).

Imported by module name, like distributed_kit. `write_version` writes an app whose `ping`
handler answers with its version's flavour; `Processes` starts `roomwire serve` processes of a
namespace and stops them all at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from distributed_kit import ROOMWIRE, SECRET, START_S, WAIT_S, Process

from roomwire.backends.base import Backend
from roomwire.runtime.bundle import pack
from roomwire_client import Room

LEASE_TTL_S = 1.0
# Between probe rooms while waiting for a lobby to see a deploy (it re-reads the pointer once a
# second): a connection may join or leave at most 10 times a second.
PROBE_S = 0.25
APP = """
from roomwire import App
import flavour

app = App("pinned")
duel = app.room("duel", {policy})


@duel.message("ping")
def ping(room, player, msg):
    room.broadcast("pong", flavour=flavour.NAME, n=msg["n"])
"""


def write_version(folder: Path, name: str, policy: str = "idle_timeout_s=60") -> str:
    """Write the app with this flavour (and room policy) into folder; its version id."""
    folder.mkdir()
    (folder / "app.py").write_text(APP.replace("{policy}", policy))
    (folder / "flavour.py").write_text(f"NAME = {name!r}\n")
    return pack(folder).version


class Processes:
    """Every process a test started; all stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, logs: Path, url: str) -> None:
        self.logs, self.url = logs, url
        self.started: list[Process] = []

    def serve(self, name: str, folder: Path, role: str, *extra: str) -> Process:
        """`roomwire serve folder/app.py --role role` on the namespace."""
        args = [ROOMWIRE, "serve", str(folder / "app.py"), "--backend", self.url, "--role", role]
        args += ["--secret", SECRET, "--lease-ttl", str(LEASE_TTL_S), *extra]
        proc = Process(name, args, self.logs / f"{name}.log")
        self.started.append(proc)
        return proc

    def worker(self, name: str, folder: Path) -> Process:
        """A worker running the files of folder."""
        return self.serve(name, folder, "worker", "--worker-id", name)

    def generic_worker(self, name: str, *extra: str) -> Process:
        """A worker without an app: it runs deployed versions in child processes."""
        args = [ROOMWIRE, "serve", "--backend", self.url, "--role", "worker", "--worker-id", name]
        args += ["--secret", SECRET, "--lease-ttl", str(LEASE_TTL_S), *extra]
        proc = Process(name, args, self.logs / f"{name}.log")
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop every process (a generic worker stops its children) and remove what they unpacked."""
        for proc in self.started:
            proc.stop()
        for proc in self.started:
            shutil.rmtree(Path(tempfile.gettempdir()) / f"roomwire-{proc.name}", ignore_errors=True)


def deploy_cli(folder: Path, url: str, *extra: str) -> str:
    """`roomwire deploy folder`; its one line of output."""
    done = subprocess.run(
        [ROOMWIRE, "deploy", str(folder), "--backend", url, *extra],
        capture_output=True,
        text=True,
        timeout=START_S * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def rollback_cli(version: str, url: str) -> str:
    """`roomwire rollback version`; its one line of output."""
    done = subprocess.run(
        [ROOMWIRE, "rollback", version, "--backend", url],
        capture_output=True,
        text=True,
        timeout=START_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def versions_json(url: str) -> list[dict[str, Any]]:
    """`roomwire versions --json`: one dict per stored version."""
    done = subprocess.run(
        [ROOMWIRE, "versions", "--backend", url, "--json"],
        capture_output=True,
        text=True,
        timeout=START_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)["versions"]
    return found


async def pong(room: Room, n: int) -> str:
    """Send ping n and return the flavour of the version that answered it."""
    await room.request("ping", {"n": n}, timeout=WAIT_S)
    while True:
        event = await room.next_event("pong", timeout=WAIT_S)
        if event.data["n"] == n:
            return str(event.data["flavour"])


async def room_version(backend: Backend, room: Room) -> str:
    """The code version the room was created with."""
    record = await backend.get_room(room.id)
    assert record is not None
    return record.code_version
