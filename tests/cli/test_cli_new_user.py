"""What a new user hits with the README in hand: bench on the README's game, errors printed whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from roomwire.cli._bench_message import choose_message
from roomwire.runtime.policy import RoomPolicy
from roomwire.runtime.roomtype import RoomType

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))
ARENA = str(Path(__file__).resolve().parents[2] / "examples" / "arena" / "app.py")


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROOMWIRE, *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def _cell(table: str, row: str) -> str:
    return table.split(f"│ {row}")[1].split("│")[1].strip()


def test_bench_in_the_readmes_form_plays_the_arena_and_exits_0() -> None:
    result = _run("bench", ARENA, "--rooms", "1", "--players", "2", "--rate", "5", "--duration", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    sent, acked = (int(n) for n in _cell(result.stdout, "sent / acked").split("/"))
    assert sent > 0 and acked == sent
    assert _cell(result.stdout, "errors") == "0"
    assert "sync" in _cell(result.stdout, "message")  # the arena's message that needs no data


def test_bench_whose_messages_the_game_refuses_exits_1_and_says_why() -> None:
    # `move` with data made up from its schema ({x: 0, y: 0}) is a jump the arena's rules refuse.
    result = _run("bench", ARENA, "--message", "move", "--rooms", "1", "--players", "2", "--duration", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bench failed" in result.stderr and "RejectedError" in result.stderr
    assert "too fast" in result.stderr and "--data" in result.stderr
    assert _cell(result.stdout, "ack latency p50") == "-"  # not a reassuring 0.00 ms


def test_bench_data_that_does_not_fit_the_schema_is_refused_before_any_bot_runs() -> None:
    result = _run("bench", ARENA, "--message", "move", "--data", '{"x": 1}', "--duration", "1", timeout=30)
    assert result.returncode == 1
    assert "does not match the 'move' handler's schema" in result.stderr and "`y`" in result.stderr
    assert "sent / acked" not in result.stdout


def test_a_missing_extra_is_named_in_full(tmp_path: Path) -> None:
    # Simulate an install without the redis extra: `import redis` fails in the child process.
    shim = tmp_path / "shim" / "redis"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named redis (simulated)')\n")
    env = {**os.environ, "PYTHONPATH": str(shim.parent)}
    result = _run("status", "--backend", "redis://127.0.0.1:6379/0", env=env, timeout=30)
    assert result.returncode == 1
    assert "pip install 'roomwire[redis]'" in result.stderr, result.stderr


def test_user_text_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    missing = tmp_path / "[bold]game[/].py"
    result = _run("run", str(missing), timeout=30)
    assert result.returncode == 1 and "[bold]game[/].py" in result.stderr


class Place(msgspec.Struct):
    cell: Annotated[int, msgspec.Meta(ge=3, le=8)]
    tag: Literal["a", "b"]
    name: Annotated[str, msgspec.Meta(min_length=2)]
    score: Annotated[float, msgspec.Meta(lt=-1)]
    note: str = ""


def place(room: object, player: object, msg: Place) -> None:
    """A handler whose message needs data."""


def test_bench_data_is_made_up_from_the_schema_within_its_constraints() -> None:
    rt = RoomType("t", RoomPolicy())
    rt.add_message_handler("place", place)
    chosen = choose_message(rt, None, None)
    assert chosen.type == "place" and chosen.derived
    assert chosen.data == {"cell": 3, "tag": "a", "name": "aa", "score": -2.0}
