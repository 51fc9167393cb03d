"""The scaling policy of `roomwire up` (cli/scaling.py) as a decision table."""

from __future__ import annotations

import pytest

from roomwire.cli.scaling import Load, ScalePolicy, decide, wanted

POLICY = ScalePolicy(min_workers=0, max_workers=8, rooms_per_worker=10, scale_down_after_s=30.0)


@pytest.mark.parametrize(
    ("awake", "waiting", "owned", "want"),
    [
        (0, 0, 0, 0),  # every room hibernated or gone: zero workers
        (1, 1, 0, 1),  # a message to a hibernated room: one worker, now
        (0, 1, 0, 1),  # a waiting room counts even before it is marked awake
        (10, 0, 10, 1),  # exactly one worker's worth
        (11, 0, 11, 2),  # one room more: a second worker
        (3, 0, 25, 3),  # reports list more rooms than awake records: the larger counts
        (500, 40, 500, 8),  # capped at max_workers
    ],
)
def test_wanted_follows_rooms_and_backlog(awake: int, waiting: int, owned: int, want: int) -> None:
    assert wanted(Load(awake=awake, waiting=waiting, owned=owned), POLICY) == want


def test_wanted_keeps_min_workers_when_idle() -> None:
    policy = ScalePolicy(min_workers=2, max_workers=4, rooms_per_worker=10)
    assert wanted(Load(awake=0, waiting=0, owned=0), policy) == 2


@pytest.mark.parametrize(
    ("want", "running", "calm_s", "now"),
    [
        (3, 1, 0.0, 3),  # up: at once, all the way
        (1, 0, 0.0, 1),  # cold start from zero
        (2, 2, 99.0, 2),  # steady
        (0, 3, 0.0, 3),  # down is not immediate
        (0, 3, 29.9, 3),  # ... not before scale_down_after_s
        (0, 3, 30.0, 2),  # ... then one at a time
        (0, 1, 30.0, 0),  # to zero
        (9, 8, 0.0, 8),  # never above max_workers
    ],
)
def test_decide(want: int, running: int, calm_s: float, now: int) -> None:
    assert decide(want, running, calm_s, POLICY) == now


def test_decide_keeps_min_workers_and_drops_above_max_at_once() -> None:
    policy = ScalePolicy(min_workers=1, max_workers=2, rooms_per_worker=10)
    assert decide(0, 1, 1e9, policy) == 1
    assert decide(2, 5, 0.0, policy) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_workers": 3, "max_workers": 2},
        {"min_workers": -1, "max_workers": 2},
        {"min_workers": 0, "max_workers": 0},
        {"min_workers": 0, "max_workers": 2, "rooms_per_worker": 0},
        {"min_workers": 0, "max_workers": 2, "scale_down_after_s": -1},
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        ScalePolicy(**kwargs)  # type: ignore[arg-type]
