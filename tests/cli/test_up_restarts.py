"""Restart pacing of `roomwire up` (cli/up.py Restarts): backoff, its reset, and the cap per minute."""

from __future__ import annotations

from roomwire.cli.up import Restarts


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
