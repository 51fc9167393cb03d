"""Fixtures for the example games' tests: their modules, loaded from examples/<game>/app.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load_example(game: str) -> Iterator[ModuleType]:
    """Import examples/<game>/app.py and keep it in sys.modules while the tests use it.

    Timer callbacks are stored by `module:function`, so the module must be importable under the
    name its functions carry. Every example's file is `app.py`; a distinct name per game
    (`example_<game>`) keeps two examples, or an app loaded by the CLI as `app`, from replacing
    each other in sys.modules during one test session.
    """
    name = f"example_{game}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / game / "app.py")
    assert spec is not None and spec.loader is not None, f"cannot import examples/{game}/app.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def arena_game() -> Iterator[ModuleType]:
    """The arena example's module (examples/arena/app.py)."""
    yield from _load_example("arena")


@pytest.fixture(scope="session")
def tictactoe_game() -> Iterator[ModuleType]:
    """The tic-tac-toe example's module (examples/tictactoe/app.py)."""
    yield from _load_example("tictactoe")


@pytest.fixture(scope="session")
def cards_game() -> Iterator[ModuleType]:
    """The cards example's module (examples/cards/app.py)."""
    yield from _load_example("cards")
