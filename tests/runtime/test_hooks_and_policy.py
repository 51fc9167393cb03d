"""Lifecycle hooks, policy spelling and step rollback, driven in-process with RoomTester."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from roomwire import App, Player, Room, SetupError
from roomwire.backends.records import CreateInput, DisconnectInput, JoinInput
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.snapshot import decode_snapshot
from roomwire.testing import RoomTester


def _app() -> tuple[App, Any]:
    app = App("hooks")
    rt = app.room("r", max_players=4, reconnect_grace_s=10)
    calls: list[str] = []

    @rt.on_join
    def join(room: Room, player: Player) -> None:
        calls.append(f"join {player.id}")

    @rt.on_disconnect
    def disconnect(room: Room, player: Player) -> None:
        calls.append(f"disconnect {player.id} connected={player.connected}")

    @rt.on_reconnect
    def reconnect(room: Room, player: Player) -> None:
        calls.append(f"reconnect {player.id}")
        room.send(player, "snapshot", n=len(calls))

    @rt.on_leave
    def leave(room: Room, player: Player, reason: str) -> None:
        calls.append(f"leave {player.id} {reason}")

    rt.calls = calls  # type: ignore[attr-defined]  # test bookkeeping
    return app, rt


def test_reconnect_within_grace_runs_reconnect_not_join() -> None:
    _, rt = _app()
    t = RoomTester(rt, options={})
    alice = t.join("alice")
    t.join("bob")
    alice.disconnect()
    t.advance(5)
    alice.reconnect()
    assert rt.calls == ["join alice", "join bob", "disconnect alice connected=False", "reconnect alice"]
    assert alice.events_of("snapshot") == [{"n": 4}]


def test_grace_running_out_leaves_with_reason_disconnected() -> None:
    _, rt = _app()
    t = RoomTester(rt)
    t.join("alice")
    bob = t.join("bob")
    bob.disconnect()
    t.advance(11)
    assert rt.calls[-1] == "leave bob disconnected"
    assert "bob" not in t.room.players


def test_policy_accepts_the_unitless_spelling() -> None:
    app = App("aliases")
    rt = app.room("r", idle_timeout=5, max_lifetime=60, tick_rate=10)
    assert (rt.policy.idle_timeout_s, rt.policy.max_lifetime_s, rt.policy.tick_rate_hz) == (5, 60, 10)
    with pytest.raises(SetupError):
        app.room("s", idle_timeout=5, idle_timeout_s=6)
    with pytest.raises(SetupError):
        app.room("t", max_players=0)
    with pytest.raises(SetupError):
        app.room("u", bogus=1)


def test_duplicate_handlers_and_late_registration_are_refused() -> None:
    app = App("dups")
    rt = app.room("r")
    rt.add_message_handler("m", lambda room, player, msg: None)
    with pytest.raises(SetupError):
        rt.add_message_handler("m", lambda room, player, msg: None)
    with pytest.raises(SetupError):
        app.room("r")
    app.build_gateway()
    with pytest.raises(SetupError):
        rt.add_message_handler("n", lambda room, player, msg: None)
    with pytest.raises(SetupError):
        app.add_route("/late", lambda request: {})


def test_timer_callbacks_must_be_module_level() -> None:
    app = App("timers")
    rt = app.room("r")

    @rt.message("bad")
    def bad(room: Room, player: Player, msg: Any) -> None:
        room.after(1, lambda room: None)

    t = RoomTester(rt)
    alice = t.join("alice")
    with pytest.raises(Exception, match="internal error"):
        alice.send("bad")
    assert t.room.timers == []


def test_state_that_is_not_plain_data_is_rolled_back() -> None:
    app = App("plain")
    rt = app.room("r")

    @rt.message("set")
    def set_(room: Room, player: Player, msg: Any) -> None:
        room.state["ok"] = msg
        if msg == "object":
            room.state["bad"] = object()
        room.broadcast("set", v=msg)

    t = RoomTester(rt)
    alice = t.join("alice")
    alice.send("set", "fine")
    with pytest.raises(Exception, match="internal error"):
        alice.send("set", "object")
    assert t.state == {"ok": "fine"}
    assert alice.events_of("set") == [{"v": "fine"}]


def test_a_disconnect_of_a_replaced_connection_is_ignored() -> None:
    # Through two gateways a player can join again before the old connection's disconnect arrives:
    # that disconnect names the old join (its session) and must not take the player out.
    _, rt = _app()
    machine = RoomMachine(rt, "room-1", lambda: 100.0)
    asyncio.run(machine.apply(CreateInput({}, 100.0)))
    asyncio.run(machine.apply(JoinInput("alice", {}, "g1-join", 100.0)))
    asyncio.run(machine.apply(JoinInput("alice", {}, "g2-join", 101.0)))  # again, while connected

    asyncio.run(machine.apply(DisconnectInput("alice", 102.0, session="g1-join")))
    assert machine.snapshot.players["alice"].connected
    assert rt.calls == ["join alice"]

    asyncio.run(machine.apply(DisconnectInput("alice", 103.0, session="g2-join")))
    assert not machine.snapshot.players["alice"].connected
    assert rt.calls == ["join alice", "disconnect alice connected=False"]


def test_a_snapshot_from_before_sessions_still_loads() -> None:
    old = msgspec.msgpack.encode(
        {"type": "r", "state": {}, "players": {"alice": ["alice", {}, True, 3, 1.0]}, "timers": []}
    )
    record = decode_snapshot(old).players["alice"]
    assert (record.connected, record.last_id, record.session) == (True, 3, "")
