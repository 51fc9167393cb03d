"""End to end: `roomwire run` serves each example game and its bot script plays it over the network."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMWIRE = Path(sys.executable).parent / "roomwire"  # the CLI of the venv running the tests
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll the TCP port until the server accepts connections; fail early if it exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # nothing to wait on but the port itself: retry shortly
    pytest.fail(f"the server did not listen on port {port} within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate the server; kill it if it does not stop within STOP_TIMEOUT_S."""
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`serve(game)` starts `roomwire run examples/<game>/app.py` and returns its base URL."""
    servers: list[subprocess.Popen[bytes]] = []

    def start(game: str) -> str:
        port = free_port()
        log = tmp_path / f"{game}-server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(ROOMWIRE), "run", f"examples/{game}/app.py", "--port", str(port), "--no-reload"],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        servers.append(server)
        wait_until_listening(server, port, log)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server in servers:
            stop(server)


def run_bot(game: str, *args: str, timeout_s: float) -> dict[str, str]:
    """Run examples/<game>/bot.py; assert it exits 0 and return its summary's key=value fields."""
    bot = subprocess.run(
        [sys.executable, f"examples/{game}/bot.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert bot.returncode == 0, f"the {game} bot failed ({bot.returncode}):\n{bot.stdout}\n{bot.stderr}"
    summary = bot.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{game}: "), bot.stdout
    return dict(re.findall(r"(\w+)=(\S+)", summary))


def test_arena_serves_its_rules_and_bots_play_tag(serve: Callable[[str], str]) -> None:
    url = serve("arena")
    rules = httpx.get(f"{url}/rules", timeout=5).json()  # the example's own lobby route
    assert rules["room_type"] == "arena"
    assert rules["max_players"] == 8

    summary = run_bot(
        "arena", "--url", url, "--bots", "3", "--seconds", "3", "--round-s", "1", "--pause-s", "0.5",
        timeout_s=60,
    )  # fmt: skip
    assert summary["bots"] == "3"
    assert int(summary["moves_sent"]) > 0
    assert int(summary["events_received"]) > 0
    assert summary["rejected"] == "0"
    assert int(summary["rounds_over"]) >= 1  # the round timer ran on the real server


def test_tictactoe_bots_play_games_to_the_end(serve: Callable[[str], str]) -> None:
    url = serve("tictactoe")
    summary = run_bot("tictactoe", "--url", url, "--games", "2", "--timeout", "30", timeout_s=60)
    assert summary["games"] == "2"
    results = summary["results"].split(",")
    assert len(results) == 2 and all(r in ("X", "O", "draw") for r in results)
    assert int(summary["moves"]) >= 2 * 5  # a game lasts at least five moves
    assert int(summary["events_received"]) > 0


def test_cards_bots_play_a_game_from_synced_state_alone(serve: Callable[[str], str]) -> None:
    url = serve("cards")
    summary = run_bot("cards", "--url", url, "--bots", "3", timeout_s=60)
    assert summary["bots"] == "3"
    assert sum(int(s) for s in summary["scores"].split(",")) == 5  # five rounds, one taker each
