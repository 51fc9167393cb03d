"""Synced rooms (issue #12): each step's state change is a `@patch` event of that step."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomwire import App, RejectedError
from roomwire.errors import RoomwireError, SetupError
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.roomtype import RoomType
from roomwire.testing import RoomTester


def arena(*, view: bool = False) -> RoomType:
    app = App("t")
    room_type = app.room("arena", sync=True, max_players=8)

    @room_type.on_create
    def create(room: Any, options: dict[str, Any]) -> None:
        room.state["players"] = {}
        room.state["hands"] = {}

    @room_type.on_join
    def join(room: Any, player: Any) -> None:
        room.state["players"][player.id] = {"pos": (0, 0), "score": 0}
        room.state["hands"][player.id] = [f"card-of-{player.id}"]

    @room_type.message("move")
    def move(room: Any, player: Any, msg: dict[str, Any]) -> None:
        room.state["players"][player.id]["pos"] = (msg["x"], msg["y"])
        room.broadcast("moved", player=player.id)

    @room_type.message("noop")
    def noop(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("hello")

    @room_type.message("fail")
    def fail(room: Any, player: Any, msg: Any) -> None:
        room.state["players"][player.id]["score"] = 99
        raise RejectedError("no")

    @room_type.message("bad")
    def bad(room: Any, player: Any, msg: Any) -> None:
        room.state["oops"] = {1: "int key"}

    if view:

        @room_type.view
        def see(room: Any, player: Any) -> Any:
            return {"players": room.state["players"], "hand": room.state["hands"].get(player.id, [])}

    return room_type


def wire(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


def view_for(t: RoomTester, player: str, *, view: bool) -> Any:
    if not view:
        return wire(t.state)
    return wire({"players": t.state["players"], "hand": t.state["hands"].get(player, [])})


def test_a_step_that_changes_the_state_ends_with_its_patch_in_the_same_output() -> None:
    t = RoomTester(arena())
    alice, bob = t.join("alice"), t.join("bob")
    t.events.clear()
    alice.send("move", x=1, y=2)
    assert [(e.type, e.data) for e in t.events] == [
        ("moved", {"player": "alice"}),
        ("@patch", [["set", ["players", "alice", "pos"], [1, 2]]]),  # frozen: as clients get it
    ]
    assert t.events[1].seq == t.events[0].seq + 1 == t.room.seq
    assert alice.synced == bob.synced == wire(t.state)


def test_no_patch_when_nothing_changed_or_the_step_failed() -> None:
    t = RoomTester(arena())
    alice = t.join("alice")
    t.events.clear()
    alice.send("noop")
    with pytest.raises(RejectedError):
        alice.send("fail")
    assert [e.type for e in t.events] == ["hello"]
    assert alice.synced == wire(t.state) and alice.synced["players"]["alice"]["score"] == 0


def test_a_joining_player_gets_the_whole_state_and_not_the_patch_of_its_join() -> None:
    t = RoomTester(arena())
    alice = t.join("alice")
    t.events.clear()
    bob = t.join("bob")
    patch, state, presence_all, presence_bob = t.events
    assert patch.type == "@patch" and patch.exclude == ("bob",)
    assert state.type == "@state" and state.to == ("bob",) and state.data == wire(t.state)
    assert alice.synced == bob.synced == wire(t.state)
    # Presence follows: the others learn bob is here; bob gets the whole list after his state.
    assert (presence_all.type, presence_all.exclude) == ("@presence", ("bob",))
    assert (presence_bob.type, presence_bob.to) == ("@presence", ("bob",))
    assert presence_bob.data == presence_all.data == {"alice": "connected", "bob": "connected"}


def test_presence_reaches_handlers_and_every_mirror() -> None:
    t = RoomTester(arena())
    alice, bob, cyd = t.join("alice"), t.join("bob"), t.join("cyd")
    seen: list[tuple[str, str]] = []
    alice.mirror.on_presence(lambda player, status: seen.append((player, status)))
    bob.disconnect()
    assert t.room.presence == {"alice": "connected", "bob": "reconnecting", "cyd": "connected"}
    cyd.leave()
    assert t.room.presence == {"alice": "connected", "bob": "reconnecting", "cyd": "left"}
    assert alice.mirror.presence == {"alice": "connected", "bob": "reconnecting"}
    bob.reconnect()
    assert bob.mirror.presence == alice.mirror.presence == {"alice": "connected", "bob": "connected"}
    assert seen == [("bob", "reconnecting"), ("cyd", "left"), ("bob", "connected")]


def test_a_reconnect_gets_the_whole_state_again() -> None:
    t = RoomTester(arena())
    alice, bob = t.join("alice"), t.join("bob")
    bob.disconnect()
    alice.send("move", x=5, y=5)
    assert bob.synced != wire(t.state)  # the patch went to the history, not to this test's bob
    bob.reconnect()
    assert [e.type for e in bob.events[-2:]] == ["@state", "@presence"] and bob.synced == wire(t.state)


def test_state_that_cannot_be_synced_fails_the_step_with_a_clear_message() -> None:
    t = RoomTester(arena())
    alice = t.join("alice")
    with pytest.raises(RoomwireError, match="internal error"):
        alice.send("bad")
    assert "oops" not in t.state and alice.synced == wire(t.state)


def test_event_types_starting_with_at_are_reserved() -> None:
    app = App("t")
    room_type = app.room("r", sync=True)

    @room_type.message("spoof")
    def spoof(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("@patch", [["set", ["x"], 1]])

    t = RoomTester(room_type)
    alice = t.join("alice")
    with pytest.raises(RoomwireError):
        alice.send("spoof")
    assert not [e for e in t.events if e.type == "@patch"]


def test_a_view_sends_each_player_only_their_part() -> None:
    t = RoomTester(arena(view=True))
    alice, bob = t.join("alice"), t.join("bob")
    alice.send("move", x=3, y=4)
    for player in (alice, bob):
        assert player.synced == view_for(t, player.id, view=True)
    # One patch for both: the change they see is the same.
    last = t.events[-1]
    assert last.type == "@patch" and set(last.to or ()) == {"alice", "bob"}
    for event in bob.events:
        assert "card-of-alice" not in msgspec.json.encode(event.data).decode()


def test_a_view_that_raises_is_logged_and_the_room_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    app = App("t")
    room_type = app.room("r")

    @room_type.view
    def see(room: Any, player: Any) -> Any:
        if player.id == "bob":
            raise KeyError("bob")
        return room.state

    t = RoomTester(room_type)
    assert room_type.sync  # a view turns sync on
    with caplog.at_level(logging.ERROR, "roomwire.room"):
        alice, bob = t.join("alice"), t.join("bob")
    assert "view failed for player bob" in caplog.text
    assert alice.synced == {} and bob.synced is None and bob.events == []


def test_a_second_view_is_a_setup_error() -> None:
    room_type = App("t").room("r")
    room_type.set_view(lambda room, player: None)
    with pytest.raises(SetupError, match="already has a view"):
        room_type.set_view(lambda room, player: None)


# --- property: every player's mirror equals the server's view after every step ---------------

keys = st.sampled_from(["a", "b", "c"])
leaf = st.one_of(st.none(), st.integers(-3, 3), st.text("xy", max_size=2))
value = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)
# One change: a path of up to 3 keys under the acting player's area or the shared one, and a
# value to put there (None: delete it). Missing parents are created.
change = st.tuples(
    st.sampled_from(["shared", "mine", "secret"]),
    st.lists(keys, min_size=1, max_size=3),
    st.one_of(st.none(), value),
)
# Then: nothing, a reconnect, a leave and a new join, or the same changes in a step that fails.
after = st.sampled_from(["none", "reconnect", "rejoin", "fail"])
step = st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.lists(change, max_size=3), after)


def mutable_room(*, view: bool) -> RoomType:
    room_type = App("t").room("prop", sync=True, rate_limit=None)

    @room_type.on_create
    def create(room: Any, options: Any) -> None:
        room.state.update({"shared": {}, "mine": {}, "secret": {}})

    @room_type.message("fail")
    def apply_then_fail(room: Any, player: Any, msg: list[Any]) -> None:
        apply_changes(room, player, msg)
        raise RejectedError("changed my mind")

    @room_type.message("change")
    def apply_changes(room: Any, player: Any, msg: list[Any]) -> None:
        for area, path, new in msg:
            if isinstance(new, list) and len(new) == 2:
                new = tuple(new)  # handlers write tuples; the wire has arrays
            node = room.state[area].setdefault(player.id, {}) if area != "shared" else room.state[area]
            for key in path[:-1]:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
            if area == "secret" and new is not None:
                new = {"owner": f"secret-of-{player.id}", "v": new}
            if new is None:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = new

    if view:

        @room_type.view
        def see(room: Any, player: Any) -> Any:
            # "secret" areas are each player's own; "mine" areas are public.
            return {
                "shared": room.state["shared"],
                "mine": room.state["mine"],
                "secret": room.state["secret"].get(player.id, {}),
            }

    return room_type


def expected(t: RoomTester, player: str, view: bool) -> Any:
    if not view:
        return wire(t.state)
    return wire(
        {"shared": t.state["shared"], "mine": t.state["mine"], "secret": t.state["secret"].get(player, {})}
    )


@settings(max_examples=60, deadline=None)
@given(st.booleans(), st.lists(step, max_size=12))
def test_every_mirror_equals_the_servers_view_after_every_step(view: bool, steps: list[Any]) -> None:
    t = RoomTester(mutable_room(view=view))
    players = {pid: t.join(pid) for pid in ("p1", "p2")}
    for actor, changes, then in steps:
        if actor not in players:
            players[actor] = t.join(actor)  # a late joiner
        ops = [[area, path, new] for area, path, new in changes]
        players[actor].send("change", ops)
        if then == "reconnect":
            players[actor].disconnect()
            players[actor].reconnect()
        elif then == "rejoin":
            players[actor].leave()
            players[actor] = t.join(actor)
        elif then == "fail":
            with pytest.raises(RejectedError):
                players[actor].send("fail", [[area, path, "unseen"] for area, path, _ in changes])
        for pid, player in players.items():
            assert player.mirror.ready
            assert player.synced == expected(t, pid, view)
            if view:  # nothing of another player's secret area ever reached this player
                text = msgspec.json.encode([e.data for e in player.events]).decode()
                assert not [other for other in players if other != pid and f"secret-of-{other}" in text]


@pytest.mark.parametrize("view", [False, True])
def test_a_recovered_room_sends_every_player_the_whole_state_again(view: bool) -> None:
    t = RoomTester(arena(view=view))
    alice, bob = t.join("alice"), t.join("bob")
    alice.send("move", x=1, y=1)
    # Another worker (or a wake-up from hibernation) loads the last checkpoint: the copies of
    # what clients hold are gone with the old process.
    old = t.machine
    t.machine = RoomMachine(old.room_type, old.room_id, lambda: t.now, snapshot=old.checkpoint)
    alice.mirror.state = None  # prove the next @state alone restores it
    bob.send("move", x=2, y=2)
    for player in (alice, bob):
        assert [e.type for e in player.events[-3:]] == ["moved", "@state", "@presence"]
        assert player.synced == view_for(t, player.id, view=view)
