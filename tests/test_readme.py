"""The README's code blocks run as printed: the game, its rules test, two clients playing it.

Each block is read from README.md and run itself, not a copy: the game is served with the
command its first line names, the client block runs as a script (only the server URL is replaced
by the test server's), and the test block runs under pytest next to the game's file. The browser
block runs in Chromium against the arena in `clients/js/e2e/readme.test.mjs`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from roomwire import RejectedError
from roomwire.testing import RoomTester

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))
README_URL = "http://127.0.0.1:8000"
RUN_S = 60.0  # bound for a README block to finish; never reached when things work


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _block(lang: str, marker: str) -> str:
    found = [b for b in _blocks(lang) if marker in b]
    assert len(found) == 1, f"README.md should have one {lang} block with {marker!r}, has {len(found)}"
    return found[0]


def _game() -> str:
    return _block("python", "# tictactoe.py")


def _client() -> str:
    return _block("python", "from roomwire_client import Client")


def _rules_test() -> str:
    return _block("python", "# test_tictactoe.py")


def test_every_python_block_is_run_by_a_test_here() -> None:
    assert sorted(_blocks("python")) == sorted([_game(), _client(), _rules_test()])
    assert len(_blocks("html")) == 1  # run in Chromium by clients/js/e2e/readme.test.mjs
    assert "README.md" in (ROOT / "clients" / "js" / "e2e" / "readme.test.mjs").read_text()


@pytest.fixture
def tictactoe(tmp_path: Path) -> Iterator[ModuleType]:
    file = tmp_path / "readme_tictactoe.py"
    file.write_text(_game())
    spec = importlib.util.spec_from_file_location("readme_tictactoe", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_tictactoe"] = module  # timers are stored by module:function
    spec.loader.exec_module(module)
    yield module
    del sys.modules["readme_tictactoe"]


def test_readme_example_plays_a_game_to_its_end(tictactoe: ModuleType) -> None:
    t = RoomTester(tictactoe.ttt)
    alice, bob = t.join("alice"), t.join("bob")
    assert alice.events_of("started")[0]["turn"] == "alice"
    alice.send("place", {"cell": 0})
    with pytest.raises(RejectedError):
        alice.send("place", {"cell": 1})
    assert t.state["board"][1] is None
    for player, cell in ((bob, 3), (alice, 1), (bob, 4), (alice, 2)):
        player.send("place", {"cell": cell})
    assert bob.events_of("game_over") == [{"winner": "alice"}]
    t.advance(5)
    assert t.ended == "game over"


def test_the_readmes_rules_test_passes_under_pytest(tmp_path: Path) -> None:
    (tmp_path / "tictactoe.py").write_text(_game())
    (tmp_path / "test_tictactoe.py").write_text(_rules_test())
    command = _rules_test().splitlines()[0].split("run with: ")[1].split()  # pytest test_tictactoe.py
    assert command[0] == "pytest"
    result = subprocess.run(
        [sys.executable, "-m", *command, "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served_game(tmp_path: Path) -> Iterator[str]:
    """The README's game, served the way its first line says (`roomwire run tictactoe.py`)."""
    game = tmp_path / "tictactoe.py"
    game.write_text(_game())
    command = _game().splitlines()[0].split("run with: ")[1].split()
    assert command == ["roomwire", "run", "tictactoe.py"]
    port = _free_port()
    proc = subprocess.Popen(
        [ROOMWIRE, *command[1:], "--port", str(port), "--no-reload"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        while "serving" not in (line := proc.stderr.readline()):
            assert line or proc.poll() is None, f"roomwire exited with {proc.returncode}"
            assert time.monotonic() < deadline, "roomwire did not start within 20 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_two_readme_clients_play_the_readme_game_to_its_end(served_game: str, tmp_path: Path) -> None:
    source = _client()
    assert source.count(README_URL) == 1
    script = tmp_path / "client.py"
    script.write_text(source.replace(README_URL, served_game))
    players = [
        subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for proc in players:
            out, err = proc.communicate(timeout=RUN_S)  # the block must end by itself
            assert proc.returncode == 0, err
            outputs.append(out)
    finally:
        for proc in players:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    for out in outputs:
        assert "started" in out and "game_over" in out, out
    # Both saw the same game: the same events in the same order.
    assert outputs[0].splitlines() == outputs[1].splitlines()


def test_quick_start_has_two_commands_and_ci_runs_the_second() -> None:
    commands = [b.strip() for b in _blocks("sh")][:2]
    assert "roomwire run examples/arena/app.py" in commands[0]
    assert commands[1] == "bash .ci/run"
    assert (README.parent / ".ci" / "run").exists()
