"""The step deadline applies to hooks and timers too, and the policy validates it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from roomwire import App, SetupError
from roomwire.backends.base import Backend
from roomwire.backends.records import CreateInput, JoinInput, MessageInput, RoomRecord
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.worker import Worker
from roomwire.testing import RoomTester


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
def test_step_timeout_must_be_positive_or_none(bad: float) -> None:
    with pytest.raises(SetupError, match="step_timeout_s"):
        App("t").room("r", step_timeout_s=bad)


def test_step_timeout_defaults_to_a_bound_and_none_disables_it() -> None:
    app = App("t")
    assert app.room("a").policy.step_timeout_s == 5.0
    assert app.room("b", step_timeout_s=None).policy.step_timeout_s is None


async def test_a_hung_join_hook_and_timer_are_rolled_back_and_the_room_goes_on() -> None:
    room_type = App("t").room("r", step_timeout_s=0.05, rate_limit=None)

    @room_type.on_join
    async def join(room: Any, player: Any) -> None:
        if player.claims.get("hang"):
            room.state["hung"] = True
            await asyncio.Event().wait()
        room.state.setdefault("joined", []).append(player.id)
        room.after(0.0, stall)

    machine = RoomMachine(room_type, "room-1", clock=lambda: 1000.0)
    await machine.apply(CreateInput({}, 1000.0))
    await machine.apply(JoinInput("p1", {"hang": True}, "ref-1", 1000.0))
    _, receipts = machine.take_output()
    assert [(r.kind, r.code) for r in receipts] == [("refused", "step_timeout")]
    assert "hung" not in machine.snapshot.state and "p1" not in machine.snapshot.players

    await machine.apply(JoinInput("p2", {}, "ref-2", 1000.0))
    await machine.fire_due()  # the timer hangs: it is bounded, consumed once, its effects dropped
    _, receipts = machine.take_output()
    assert [r.kind for r in receipts] == ["joined"]
    assert machine.snapshot.state == {"joined": ["p2"]}
    assert all(t.fn.startswith("@") for t in machine.snapshot.timers)  # only built-ins remain


async def stall(room: Any) -> None:
    """A timer callback that never returns."""
    room.state["stalled"] = True
    await asyncio.Event().wait()


def test_room_tester_runs_async_handlers_without_a_deadline() -> None:
    room_type = App("t").room("r", rate_limit=None)

    @room_type.message("ping")
    async def ping(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("pong")

    tester = RoomTester(room_type)
    alice = tester.join("alice")
    alice.send("ping")
    assert alice.events_of("pong")


async def test_worker_aclose_cancels_a_hung_step_and_the_next_owner_runs_its_input_again(
    backend: Backend,
) -> None:
    app = App("t")
    room_type = app.room("r", step_timeout_s=None, rate_limit=None)  # nothing bounds the step
    release = asyncio.Event()
    entered = asyncio.Event()
    ran: list[str] = []

    @room_type.message("hang")
    async def hang(room: Any, player: Any, msg: Any) -> None:
        ran.append("hang")
        entered.set()
        await release.wait()  # hangs for the first owner; the second one is released at once
        room.broadcast("done")

    now = time.time()
    await backend.create_room(
        RoomRecord(id="room-1", type="r", max_players=4, created_at=now), CreateInput({}, now)
    )
    await backend.append_input("room-1", JoinInput("p1", {}, "ref-1", now))
    await backend.append_input("room-1", MessageInput("p1", "hang", None, 1, now))
    first = Worker(app.room_types, backend)
    await first.start()
    await asyncio.wait_for(entered.wait(), 5)
    started = time.monotonic()
    await asyncio.wait_for(first.aclose(), 5)
    assert time.monotonic() - started < 2
    loaded = await backend.load("room-1")
    assert loaded is None or loaded.inbound_offset < 3  # the hung message was not committed

    release.set()
    second = Worker(app.room_types, backend)
    await second.start()
    try:
        async with asyncio.timeout(5):
            # The commit has no event of its own to wait on (hence the noqa): poll, bounded.
            while (loaded := await backend.load("room-1")) is None or loaded.inbound_offset < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert ran == ["hang", "hang"]
        assert [e.type for e in await backend.read_events("room-1", 0)] == ["done"]
    finally:
        await second.aclose()
