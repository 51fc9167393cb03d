"""Promise 2 in the room itself: id gaps, ids that outlive a membership, sessions, bans (no I/O)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from roomwire import App
from roomwire.backends.records import CreateInput, JoinInput, LeaveInput, MessageInput, Receipt
from roomwire.runtime import machine as machine_module
from roomwire.runtime.ids import MAX_GAPS, take_id
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.snapshot import PlayerRecord


def _record() -> PlayerRecord:
    return PlayerRecord("p", {})


def test_a_skipped_id_is_applied_once_then_a_duplicate() -> None:
    record = _record()
    assert [take_id(record, i) for i in (1, 3, 2, 2, 3)] == ["apply", "apply", "apply", "dup", "dup"]
    assert record.gaps == [] and record.last_id == 3


def test_a_range_splits_when_an_id_inside_it_arrives() -> None:
    record = _record()
    take_id(record, 10)
    assert record.gaps == [1, 9]
    assert take_id(record, 5) == "apply" and record.gaps == [1, 4, 6, 9]
    assert take_id(record, 1) == "apply" and record.gaps == [2, 4, 6, 9]
    assert take_id(record, 9) == "apply" and record.gaps == [2, 4, 6, 8]
    assert take_id(record, 5) == "dup"


def test_past_the_remembered_ranges_the_oldest_is_forgotten_below_a_floor() -> None:
    record = _record()
    for i in range(MAX_GAPS + 1):
        take_id(record, 2 * (i + 1))  # skips 1, 3, 5, ...
    assert len(record.gaps) == 2 * MAX_GAPS and record.floor == 1
    assert take_id(record, 1) == "expired"
    assert take_id(record, 3) == "apply"


class _Game:
    """A room type counting moves, driven without I/O."""

    def __init__(self, **policy: object) -> None:
        app = App("ids")
        self.room_type = app.room("r", rate_limit=None, **policy)

        @self.room_type.message("move")
        def move(room: object, player: object, msg: int) -> None:
            room.state["total"] = room.state.get("total", 0) + msg  # type: ignore[attr-defined]  # Room

        self.now = 1000.0
        self.machine = RoomMachine(self.room_type, "room", lambda: self.now)
        self.apply(CreateInput({}, self.now))

    def apply(self, item: object) -> list[Receipt]:
        asyncio.run(self.machine.apply(item))  # type: ignore[arg-type]  # Input
        return self.machine.take_output()[1]


def test_a_removed_players_ids_are_kept_and_a_new_membership_continues_them() -> None:
    game = _Game(auto_dispose=False)
    game.apply(JoinInput("p", {}, "s1", game.now))
    game.apply(MessageInput("p", "move", 5, 1, game.now, "s1"))
    game.apply(MessageInput("p", "move", 5, 3, game.now, "s1"))  # 2 skipped
    removed = game.apply(LeaveInput("p", "left", game.now, "s1"))
    assert [(r.kind, r.session) for r in removed] == [("removed", "s1")]
    joined = game.apply(JoinInput("p", {}, "s2", game.now, rejoin=True))
    assert joined[0].kind == "joined" and joined[0].last_id == 3
    assert game.apply(MessageInput("p", "move", 5, 1, game.now, "s2"))[0].kind == "dup"
    assert game.apply(MessageInput("p", "move", 1, 2, game.now, "s2"))[0].kind == "ack"
    assert game.machine.snapshot.state["total"] == 11


def test_a_rejoin_seat_of_a_forgotten_player_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_module, "MAX_DEPARTED", 2)
    game = _Game(auto_dispose=False)
    for p in ("a", "b", "c"):
        game.apply(JoinInput(p, {}, p, game.now))
        game.apply(LeaveInput(p, "left", game.now, p))
    assert list(game.machine.snapshot.departed) == ["b", "c"]
    refused = game.apply(JoinInput("a", {}, "a2", game.now, rejoin=True))
    assert (refused[0].kind, refused[0].code) == ("refused", "unauthorized")
    assert game.apply(JoinInput("a", {}, "a3", game.now))[0].kind == "joined"  # a fresh lobby seat
    game.now += game.room_type.policy.rejoin_ttl_s + 1
    game.apply(LeaveInput("a", "left", game.now, "a3"))
    assert list(game.machine.snapshot.departed) == ["a"]  # older than a rejoin seat lives: gone


def test_a_stale_leave_and_message_of_a_replaced_session_change_nothing() -> None:
    game = _Game()
    game.apply(JoinInput("p", {}, "s1", game.now))
    game.apply(JoinInput("p", {}, "s2", game.now, rejoin=True))
    refused = game.apply(MessageInput("p", "move", 5, 1, game.now, "s1"))
    assert [(r.kind, r.code, r.session) for r in refused] == [("reject", "replaced", "s1")]
    assert game.apply(LeaveInput("p", "left", game.now, "s1")) == []
    assert "p" in game.machine.snapshot.players
    assert game.apply(MessageInput("p", "move", 5, 1, game.now, "s2"))[0].kind == "ack"  # id 1 unused


def test_inputs_and_snapshots_written_before_sessions_still_decode() -> None:
    old_msg = msgspec.msgpack.encode(["msg", "p", "move", 1, 7, 1.0])
    item = msgspec.msgpack.decode(old_msg, type=MessageInput)
    assert item.session == ""
    old_leave = msgspec.msgpack.decode(msgspec.msgpack.encode(["leave", "p", "left", 1.0]), type=LeaveInput)
    assert old_leave.session == ""
    game = _Game()
    assert b"departed" not in game.machine.checkpoint and b"banned" not in game.machine.checkpoint
