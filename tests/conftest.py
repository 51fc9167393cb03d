"""Shared fixtures and helpers for the whole test suite."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend

# --- engine availability (backends) ------------------------------------------------------------
# A test that needs a real engine asks for the `require_engine` fixture and calls it, e.g.
# `require_engine("redis", "127.0.0.1", 6379)`: in CI (env CI set) an unreachable engine fails the
# test, elsewhere it skips with the reason (listed in the summary, see pytest_configure below).
# These are fixtures, not importable functions: `import conftest` is ambiguous with several
# conftest.py files and no packages under tests/.


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _require_engine(name: str, host: str, port: int, timeout_s: float = 0.5) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        _skip_or_fail(f"{name} is not reachable at {host}:{port} ({exc}); start it to run these tests")


@pytest.fixture(scope="session")
def skip_or_fail() -> Callable[[str], None]:
    """`skip_or_fail(reason)`: fail the test in CI (env CI set), skip it with the reason elsewhere."""
    return _skip_or_fail


@pytest.fixture(scope="session")
def require_engine() -> Callable[[str, str, int], None]:
    """`require_engine(name, host, port)`: skip (fail in CI) unless a TCP connect succeeds."""
    return _require_engine


def pytest_configure(config: pytest.Config) -> None:
    """Always list skip reasons in the summary, so a missing engine is visible."""
    chars = getattr(config.option, "reportchars", "") or ""
    if not any(c in chars for c in "saA"):
        config.option.reportchars = chars + "s"


# --- end of engine availability ----------------------------------------------------------------


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """An open in-memory backend (tests/backends overrides this with one per engine)."""
    b = backend_from_url("memory://")
    await b.open()
    try:
        yield b
    finally:
        await b.aclose()
