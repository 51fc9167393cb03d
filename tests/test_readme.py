"""The README's complete example runs as printed, and its quick start is what CI runs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from roomwire import RejectedError
from roomwire.testing import RoomTester

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture
def tictactoe(tmp_path: Path) -> ModuleType:
    source = next(b for b in _blocks("python") if "tictactoe.py" in b)
    file = tmp_path / "readme_tictactoe.py"
    file.write_text(source)
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


def test_quick_start_has_two_commands_and_ci_runs_the_second() -> None:
    commands = [b.strip() for b in _blocks("sh")][:2]
    assert "roomwire run examples/arena/app.py" in commands[0]
    assert commands[1] == "bash .ci/run"
    assert (README.parent / ".ci" / "run").exists()
