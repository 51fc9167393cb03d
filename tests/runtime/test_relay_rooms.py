"""Relay rooms (issue #12 part 4): client messages ordered and relayed, no server code."""

from __future__ import annotations

import pytest

from roomwire import App, RejectedError
from roomwire.runtime.roomtype import RoomType
from roomwire.testing import RoomTester


def relay(*, host: bool = False) -> RoomType:
    return App("t").relay("chat", max_players=4, host=host)


def test_every_message_is_an_event_for_everyone_the_sender_too() -> None:
    t = RoomTester(relay())
    ann, bob = t.join("ann"), t.join("bob")
    ann.send("say", {"text": "hi"})
    bob.send("pos", [1, 2])
    relayed = [(e.type, e.data) for e in t.events]
    assert relayed == [
        ("say", {"from": "ann", "data": {"text": "hi"}}),
        ("pos", {"from": "bob", "data": [1, 2]}),
    ]
    assert [e.type for e in ann.events] == [e.type for e in bob.events] == ["say", "pos"]


def test_a_message_naming_players_reaches_them_and_the_sender_only() -> None:
    t = RoomTester(relay())
    ann, bob, cyd = t.join("ann"), t.join("bob"), t.join("cyd")
    ann.send("whisper", {"@to": ["bob"], "text": "psst"})
    assert (
        bob.events_of("whisper")
        == ann.events_of("whisper")
        == [{"from": "ann", "data": {"@to": ["bob"], "text": "psst"}}]
    )
    assert cyd.events_of("whisper") == []


@pytest.mark.parametrize("data", [{"@to": "bob"}, {"@to": [1]}, {"@to": ["a", "b", "c", "d", "e"]}])
def test_a_bad_recipient_list_is_rejected(data: object) -> None:
    t = RoomTester(relay())
    ann = t.join("ann")
    with pytest.raises(RejectedError, match="@to"):
        ann.send("whisper", data)
    assert t.events == []


def test_reserved_message_types_are_rejected() -> None:
    t = RoomTester(relay())
    ann = t.join("ann")
    with pytest.raises(RejectedError, match="reserved"):
        ann.send("@host", {"player": "ann"})


def test_the_host_is_the_first_connected_player_and_a_new_one_is_announced() -> None:
    t = RoomTester(relay(host=True))
    ann = t.join("ann")
    t.advance(1)
    bob = t.join("bob")
    t.advance(1)
    cyd = t.join("cyd")
    assert t.state["host"] == "ann" and ann.events_of("@host") == [{"player": "ann"}]
    assert bob.events_of("@host") == cyd.events_of("@host") == [{"player": "ann"}]  # told on joining
    ann.disconnect()
    assert t.state["host"] == "bob" and cyd.events_of("@host")[-1] == {"player": "bob"}
    ann.reconnect()
    assert t.state["host"] == "bob"  # a returning player does not take it back
    assert ann.events_of("@host")[-1] == {"player": "bob"}  # and learns who has it
    bob.leave()
    assert t.state["host"] == "ann" and cyd.events_of("@host")[-1] == {"player": "ann"}
    changes = [e.data for e in t.events if e.type == "@host" and e.to is None]
    assert changes == [{"player": "ann"}, {"player": "bob"}, {"player": "ann"}]


def test_a_synced_relay_room_mirrors_its_host_and_presence() -> None:
    t = RoomTester(App("t").relay("lobby", host=True, sync=True))
    ann = t.join("ann")
    t.advance(1)
    bob = t.join("bob")
    ann.send("say", "hi")
    assert bob.synced == ann.synced == {"host": "ann"}
    ann.disconnect()
    assert bob.synced == {"host": "bob"}
    assert bob.mirror.presence == {"ann": "reconnecting", "bob": "connected"}
    assert bob.events_of("say") == [{"from": "ann", "data": "hi"}]
