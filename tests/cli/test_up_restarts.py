"""`roomwire up`: restart pacing (cli/up.py Restarts: backoff, its reset, the cap per minute) and
its refusals of bad arguments (exit 1 with a message, nothing started)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roomwire.cli.up import Restarts

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))
URL = "redis://127.0.0.1:6379/0?namespace=never-opened"
SECRET = "a-secret-of-sixteen-or-more"


def test_backoff_doubles_to_its_ceiling_and_resets_after_a_long_run() -> None:
    r = Restarts(per_minute=100, backoff_s=(0.5, 30.0))
    waits = [r.exited(now=0.0, ran_s=1.0) for _ in range(8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert r.exited(now=0.0, ran_s=31.0) == 0.5  # ran longer than the ceiling: a fresh failure


def test_no_restart_before_the_backoff_has_passed() -> None:
    r = Restarts(per_minute=100)
    r.exited(now=10.0, ran_s=0.1)
    assert r.wait_s(10.0) == 0.5
    assert r.wait_s(10.5) == 0.0


def test_the_cap_holds_restarts_back_until_a_minute_after_the_first() -> None:
    r = Restarts(per_minute=3, backoff_s=(0.0, 0.0))
    for t in (0.0, 1.0, 2.0):
        r.exited(now=t, ran_s=0.1)
        assert r.wait_s(t) == 0.0
        r.started(t)
    r.exited(now=3.0, ran_s=0.1)
    assert r.capped(3.0)
    assert r.wait_s(3.0) == 57.0  # the restart at 0.0 leaves the window at 60.0
    assert not r.capped(60.0)
    assert r.wait_s(60.0) == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", SECRET], "pass --app APP.py"),
        (["--secret", SECRET, "--app", "/nowhere/app.py"], "no such file"),
        (["--gateways", "0"], "ROOMWIRE_SECRET"),
        (["--gateways", "0", "--secret", SECRET, "--min-workers", "3", "--max-workers", "2"], "min_workers"),
        (["--gateways", "0", "--secret", SECRET, "--backend", "memory://"], "shared engine"),
        (["--gateways", "0", "--secret", SECRET, "--backend", "redis://127.0.0.1:1/0"], "cannot open"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(args: list[str], message: str) -> None:
    if "--backend" not in args:
        args = ["--backend", URL, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMWIRE_")}
    done = subprocess.run(
        [ROOMWIRE, "up", *args], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
