"""`roomwire run --data` keeps its token secret next to the data file: players survive a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import httpx
import jwt
import pytest

from roomwire.cli.secret_file import SecretFileError, load_or_create_secret, secret_path
from roomwire.gateway.auth import TokenSigner
from roomwire_client import Client
from roomwire_client._resume import Backoff

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))

APP = textwrap.dedent(
    """
    from roomwire import App

    app = App("counter")
    counter = app.room("counter", reconnect_grace_s=60)

    @counter.on_create
    def create(room, options):
        room.state["n"] = 0

    @counter.message("add")
    def add(room, player, msg):
        room.state["n"] += 1
        room.broadcast("total", n=room.state["n"])
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(app: Path, data: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "ROOMWIRE_SECRET"}
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [ROOMWIRE, "run", str(app), "--port", str(port), "--data", str(data), "--no-reload"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving" in line:
            return proc
        if not line and proc.poll() is not None:
            raise AssertionError(f"roomwire exited with {proc.returncode}")
    proc.kill()
    raise AssertionError("roomwire did not start within 20 s")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_tokens_and_rejoin_seats_outlive_a_restart_without_secret(tmp_path: Path) -> None:
    app = tmp_path / "counter.py"
    app.write_text(APP)
    data = tmp_path / "rooms.db"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await asyncio.to_thread(_start, app, data, port)
    client = Client(url, backoff=Backoff(initial_s=0.1, max_s=0.5), reconnect_timeout_s=30)
    try:
        await client.login_guest()
        room = await client.join_or_create("counter")
        await room.request("add")
        assert (await room.next_event("total")).data == {"n": 1}
        await asyncio.to_thread(_stop, proc)
        proc = await asyncio.to_thread(_start, app, data, port)
        # WebSocket: the client rejoins the same room with its rejoin seat, signed before the restart.
        await room.request("add", timeout=30)
        assert (await room.next_event("total")).data == {"n": 2}
        # HTTP: the lobby still takes the bearer token issued before the restart.
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                f"{url}/rooms",
                params={"type": "counter"},
                headers={"Authorization": f"Bearer {client.token}"},
            )
        assert answer.status_code == 200, answer.text
    finally:
        await client.aclose()
        await asyncio.to_thread(_stop, proc)
    kept = secret_path(data)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_the_secret_file_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "rooms.db"
    first, created = load_or_create_secret(data)
    again, created_again = load_or_create_secret(data)
    assert created and not created_again and first == again and len(first) >= 32
    assert stat.S_IMODE(secret_path(data).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["rooms.db.secret"]  # no temporary file left


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "rooms.db"
    load_or_create_secret(data)
    secret_path(data).chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        load_or_create_secret(data)
    app = tmp_path / "counter.py"
    app.write_text(APP)
    cmd = [ROOMWIRE, "run", str(app), "--port", str(_free_port()), "--data", str(data), "--no-reload"]
    env = {k: v for k, v in os.environ.items() if k != "ROOMWIRE_SECRET"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False, env=env)
    assert result.returncode == 1 and "chmod 600" in result.stderr


def test_a_short_secret_is_stretched_to_a_32_byte_key() -> None:
    signer = TokenSigner("sixteen-chars-ok")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyJWT's InsecureKeyLengthWarning would raise here
        token = signer.issue_token("alice")
    assert signer.verify_token(token).player_id == "alice"
    with warnings.catch_warnings(), pytest.raises(jwt.InvalidSignatureError):
        warnings.simplefilter("ignore")  # the raw short secret is not the key (PyJWT warns: too short)
        jwt.decode(token, "sixteen-chars-ok", algorithms=["HS256"])
    with pytest.raises(ValueError, match="at least 16"):
        TokenSigner("too-short")
