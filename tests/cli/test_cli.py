"""The `roomwire` command as a user runs it: version, clear errors, and reload that keeps rooms."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomwire_client import Client

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))

APP = textwrap.dedent(
    """
    from roomwire import App

    app = App("counter")
    counter = app.room("counter")

    @counter.on_create
    def create(room, options):
        room.state["n"] = 0

    @counter.message("add")
    def add(room, player, msg):
        room.state["n"] += STEP
        room.broadcast("total", n=room.state["n"])

    STEP = {step}
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROOMWIRE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0 and "roomwire" in result.stdout


def test_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("run", str(tmp_path / "missing.py"))
    assert result.returncode == 1 and "no such file" in result.stderr


def test_import_error_in_the_app_is_shown(tmp_path: Path) -> None:
    app = tmp_path / "broken.py"
    app.write_text("import this_module_does_not_exist\n")
    result = _run("run", str(app))
    assert result.returncode == 1
    assert "importing" in result.stderr and "this_module_does_not_exist" in result.stderr


def test_file_without_an_app_is_a_clear_error(tmp_path: Path) -> None:
    app = tmp_path / "empty.py"
    app.write_text("x = 1\n")
    result = _run("run", str(app))
    assert result.returncode == 1 and "defines no roomwire App" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    app = tmp_path / "counter.py"
    app.write_text(APP.format(step=1))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("run", str(app), "--port", str(port), "--no-reload")
    assert result.returncode == 1 and "in use" in result.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, subprocess.Popen[str]]]:
    app = tmp_path / "counter.py"
    app.write_text(APP.format(step=1))
    port = _free_port()
    proc = subprocess.Popen(
        [ROOMWIRE, "run", str(app), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_for_line(proc, "serving", 20)
        yield app, f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if text in line:
            return line
        if not line and proc.poll() is not None:
            raise AssertionError(f"roomwire exited with {proc.returncode} before printing {text!r}")
    raise AssertionError(f"no line with {text!r} within {timeout} s")


async def test_reload_on_save_keeps_live_rooms_and_runs_the_new_code(
    served: tuple[Path, str, subprocess.Popen[str]],
) -> None:
    app, url, proc = served
    async with Client(url) as client:
        await client.login_guest()
        room = await client.join_or_create("counter")
        for _ in range(3):
            await room.request("add")
        assert (await room.next_event("total")).data == {"n": 1}

        app.write_text(APP.format(step=100))
        await asyncio.to_thread(_wait_for_line, proc, "reloaded", 20)
        await room.request("add")  # the client reconnects and resumes by itself
        totals = [(await room.next_event("total")).data["n"] for _ in range(3)]
    assert totals == [2, 3, 103]  # the state survived; the new code adds 100


async def test_data_file_keeps_rooms_across_a_restart(tmp_path: Path) -> None:
    app = tmp_path / "counter.py"
    app.write_text(APP.format(step=1))
    data = tmp_path / "rooms.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ROOMWIRE_SECRET": "a-test-secret-of-enough-length"}

    def start(port: int) -> subprocess.Popen[str]:
        cmd = [ROOMWIRE, "run", str(app), "--port", str(port), "--data", str(data), "--no-reload"]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        _wait_for_line(proc, "serving", 20)
        return proc

    def stop(proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    port = _free_port()
    proc = await asyncio.to_thread(start, port)
    try:
        async with Client(f"http://127.0.0.1:{port}") as client:
            await client.login_guest()
            room = await client.join_or_create("counter")
            for _ in range(3):
                await room.request("add")
            room_id = room.id
    finally:
        await asyncio.to_thread(stop, proc)

    port = _free_port()
    proc = await asyncio.to_thread(start, port)
    try:
        async with Client(f"http://127.0.0.1:{port}") as client:
            await client.login_guest()
            again = await client.join(room_id)
            await again.request("add")
            assert (await again.next_event("total")).data == {"n": 4}
    finally:
        await asyncio.to_thread(stop, proc)


def test_bench_plays_the_users_game_and_prints_the_table(tmp_path: Path) -> None:
    app = tmp_path / "counter.py"
    app.write_text(APP.format(step=1))
    result = _run("bench", str(app), "--rooms", "2", "--players", "2", "--rate", "5", "--duration", "2")
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "ack latency p99" in table and "events delivered per second" in table
    sent, acked = (int(n) for n in table.split("sent / acked")[1].split("│")[1].split("/"))
    assert sent > 0 and acked == sent
    assert "│ errors" in table and table.split("│ errors")[1].split("│")[1].strip() == "0"


def test_bench_refuses_an_unknown_message_type(tmp_path: Path) -> None:
    app = tmp_path / "counter.py"
    app.write_text(APP.format(step=1))
    result = _run("bench", str(app), "--message", "nope", "--duration", "1")
    assert result.returncode == 1 and "no handler for 'nope'" in result.stderr
