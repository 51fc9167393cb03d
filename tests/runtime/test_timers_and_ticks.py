"""Timers, ticks, lifetime and kicks are room inputs: driven here with RoomTester's clock."""

from __future__ import annotations

from typing import Any

import pytest

from roomwire import App, Player, Room
from roomwire.testing import RoomTester


def ring(room: Room, label: str) -> None:
    """A timer callback (module level: timers are stored by name)."""
    room.state.setdefault("rang", []).append([label, round(room.now - room.state["t0"], 3)])


def _room_type(**policy: Any) -> Any:
    app = App("timers")
    rt = app.room("r", **policy)

    @rt.on_create
    def create(room: Room, options: dict[str, Any]) -> None:
        room.state["t0"] = room.now
        room.state["ticks"] = []

    @rt.message("schedule")
    def schedule(room: Room, player: Player, msg: Any) -> None:
        room.state["every"] = room.every(1.0, ring, "every")
        room.state["once"] = room.after(2.5, ring, "once")
        room.state["cancelled"] = room.after(1.5, ring, "never")

    @rt.message("cancel")
    def cancel(room: Room, player: Player, msg: Any) -> None:
        assert room.cancel(room.state[msg]) is True
        assert room.cancel(room.state[msg]) is False

    @rt.message("kick")
    def kick(room: Room, player: Player, msg: Any) -> None:
        room.kick(msg)

    if policy.get("tick_rate_hz"):

        @rt.on_tick
        def tick(room: Room, dt: float) -> None:
            room.state["ticks"].append(round(room.now - room.state["t0"], 3))

    return rt


def test_after_every_and_cancel_fire_at_their_times_in_order() -> None:
    t = RoomTester(_room_type())
    alice = t.join("alice")
    alice.send("schedule")
    alice.send("cancel", "cancelled")
    t.advance(3.2)
    assert t.state["rang"] == [["every", 1.0], ["every", 2.0], ["once", 2.5], ["every", 3.0]]
    alice.send("cancel", "every")
    t.advance(5)
    assert t.state["rang"][-1] == ["every", 3.0]
    assert t.room.timers == []


def test_ticks_run_at_the_rate_while_someone_is_connected() -> None:
    t = RoomTester(_room_type(tick_rate_hz=4))
    assert t.state["ticks"] == []  # nobody here: no ticks
    alice = t.join("alice")
    t.advance(1.0)
    assert t.state["ticks"] == [0.25, 0.5, 0.75, 1.0]
    alice.disconnect()
    t.advance(1.0)
    assert len(t.state["ticks"]) == 4  # paused while nobody is connected
    alice.reconnect()
    t.advance(0.5)
    assert len(t.state["ticks"]) == 6


def test_tick_hook_needs_a_tick_rate() -> None:
    app = App("x")
    rt = app.room("r")
    with pytest.raises(Exception, match="tick_rate_hz"):
        rt.on_tick(lambda room, dt: None)


def test_max_lifetime_ends_the_room() -> None:
    t = RoomTester(_room_type(max_lifetime_s=10))
    alice = t.join("alice")
    t.advance(9.9)
    assert t.ended is None
    t.advance(0.2)
    assert t.ended == "max_lifetime"
    assert alice.connected is True  # the gateway tells clients `left {reason: ended}`


def test_kick_removes_the_player_with_the_reason() -> None:
    app_rt = _room_type()
    left: list[tuple[str, str]] = []
    app_rt.add_hook("leave", lambda room, player, reason: left.append((player.id, reason)))
    t = RoomTester(app_rt)
    alice, bob = t.join("alice"), t.join("bob")
    alice.send("kick", "bob")
    assert left == [("bob", "kicked")]
    assert "bob" not in t.room.players and bob.connected is False


def test_empty_room_ends_when_its_last_player_leaves() -> None:
    t = RoomTester(_room_type())
    alice = t.join("alice")
    alice.leave()
    assert t.ended == "empty"


def test_room_nobody_joins_ends_after_seat_ttl_and_grace() -> None:
    t = RoomTester(_room_type(seat_ttl_s=5, reconnect_grace_s=5))
    t.advance(9.9)
    assert t.ended is None
    t.advance(0.2)
    assert t.ended == "empty"
