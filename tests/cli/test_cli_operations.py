"""`roomwire run --metrics --log-format json` as an operator runs it: scrape, find a ref in the logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from roomwire_client import Client, ClientError

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))

APP = textwrap.dedent(
    """
    from roomwire import App

    app = App("ops", version="v7")
    counter = app.room("counter")

    @counter.on_create
    def create(room, options):
        room.state["n"] = 0

    @counter.message("add")
    def add(room, player, msg):
        room.state["n"] += 1
        room.broadcast("total", n=room.state["n"])

    @counter.message("boom")
    def boom(room, player, msg):
        raise ValueError("a bug in the game")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """`roomwire run` in a child process; every stderr line kept (the JSON logs go there)."""

    def __init__(self, args: list[str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [ROOMWIRE, *args],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r}:\n{''.join(self.lines)}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape_until_messages(
    url: str, count: int
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape until `count` messages reached a commit (acks can arrive just before the metrics move)."""
    key = ("roomwire_message_to_commit_seconds_count", (("type", "counter"),))
    async with httpx.AsyncClient(timeout=10.0) as http:
        deadline = time.monotonic() + 10
        while True:
            response = await http.get(url)
            assert response.status_code == 200
            samples = _samples(response.text)
            if samples.get(key) == count or time.monotonic() > deadline:
                return samples
            await asyncio.sleep(0.05)


async def test_run_with_metrics_and_json_logs(tmp_path: Path) -> None:
    app = tmp_path / "ops_app.py"
    app.write_text(APP)
    port = _free_port()
    served = Served(
        ["run", str(app), "--port", str(port), "--no-reload", "--log-format", "json", "--metrics"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(served.wait_for, "serving")
        async with Client(url) as client:
            await client.login_guest()
            room = await client.join_or_create("counter")
            for _ in range(3):
                await room.request("add")
            with pytest.raises(ClientError) as failed:
                await room.request("boom")
            room_id, player_id = room.id, room.player
            samples = await _scrape_until_messages(f"{url}/metrics", 4)
        assert failed.value.code == "internal" and failed.value.ref
        ref = failed.value.ref
        key = ("roomwire_message_to_commit_seconds_count", (("type", "counter"),))
        assert samples[key] == 4  # 3 adds and the boom
        assert samples[("roomwire_handler_errors_total", (("code", "internal"), ("type", "counter")))] == 1
        # create, join, 3 adds, boom
        assert samples[("roomwire_inputs_total", (("type", "counter"),))] == 6
        assert samples[("roomwire_rooms", (("state", "active"), ("type", "counter"), ("version", "v7")))] == 1
    finally:
        await asyncio.to_thread(served.stop)

    # Every logged line is one JSON object (tracebacks included); only the banner and click's
    # answer to SIGINT are for people.
    people = ("roomwire ", "Aborted!")
    logged = [line for line in served.lines if line.strip() and not line.startswith(people)]
    records: list[dict[str, Any]] = [json.loads(line) for line in logged]
    found = [r for r in records if r.get("ref") == ref]
    assert len(found) == 1, served.lines
    (record,) = found
    assert record["level"] == "error"
    assert record["room"] == room_id
    assert record["player"] == player_id
    assert record["room_type"] == "counter"
    assert record["version"] == "v7"
    assert isinstance(record["seq"], int)
    assert "ValueError: a bug in the game" in record["exc"]
    assert ref in record["msg"]


def test_worker_refuses_a_taken_metrics_port_with_a_message(tmp_path: Path) -> None:
    """As a gateway does: before, the worker ran without its exporter and failed only at stop."""
    from click.testing import CliRunner

    from roomwire.cli.main import main

    app = tmp_path / "app.py"
    app.write_text(APP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["serve", str(app), "--role", "worker", "--backend", "redis://127.0.0.1:6379/0"]
        args += ["--secret", "s" * 16, "--metrics-port", str(port), "--host", "127.0.0.1"]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
