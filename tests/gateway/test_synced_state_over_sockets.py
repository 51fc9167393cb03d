"""Synced state over real sockets (issue #12): mirrors converge; hidden fields never leave.

A card game where each player's hand is secret (the room type's view leaves other hands out).
Every frame the other player receives — live, on join, on a resume that replays history, on a
resume past the history window, and after a reconnect — is checked for the secret strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gateway_harness import RawClient, Server, serving

from roomwire import App
from roomwire.backends.redis import RedisBackend
from roomwire.protocol.mirror import StateMirror
from roomwire.testing import serve_app

HISTORY = 12


def card_app() -> App:
    app = App("sync-tests")
    cards = app.room("cards", max_players=4, history=HISTORY, rate_limit=None, idle_timeout_s=60)

    @cards.on_create
    def create(room: Any, options: dict[str, Any]) -> None:
        room.state.update({"board": [], "hands": {}, "turns": 0})

    @cards.on_join
    def join(room: Any, player: Any) -> None:
        room.state["hands"].setdefault(player.id, [])

    @cards.message("draw")
    def draw(room: Any, player: Any, msg: Any) -> None:
        hand = room.state["hands"][player.id]
        hand.append(f"secret-{player.id}-{len(hand)}")
        room.state["turns"] += 1

    @cards.message("play")
    def play(room: Any, player: Any, msg: Any) -> None:
        room.state["hands"][player.id].pop()
        room.state["board"].append(f"played-{room.state['turns']}")
        room.state["turns"] += 1

    @cards.message("look")
    def look(room: Any, player: Any, msg: Any) -> None:
        room.send(player, "view", see(room, player))  # the server's view, for the test to compare

    @cards.view
    def see(room: Any, player: Any) -> Any:
        return {
            "board": room.state["board"],
            "turns": room.state["turns"],
            "hand": room.state["hands"].get(player.id, []),
            "others": {pid: len(hand) for pid, hand in room.state["hands"].items() if pid != player.id},
        }

    return app


@pytest.fixture(params=["embedded", "redis"])
async def server(
    request: pytest.FixtureRequest, require_engine: Callable[[str, str, int], None]
) -> AsyncIterator[Server]:
    """The card game on the embedded backend, and on Redis (a fresh namespace, dropped after)."""
    app = card_app()
    if request.param == "embedded":
        async with serve_app(app) as url, serving(url, app) as srv:
            yield srv
        return
    require_engine("redis", "127.0.0.1", 6379)
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    backend = RedisBackend("redis://127.0.0.1:6379/0", namespace)
    try:
        async with serve_app(app, backend) as url, serving(url, app) as srv:
            yield srv
    finally:
        cleaner = RedisBackend("redis://127.0.0.1:6379/0", namespace)
        await cleaner.open()
        await cleaner.drop_all()
        await cleaner.aclose()


def mirror_of(frames: list[dict[str, Any]], room: str) -> StateMirror:
    """A client's mirror fed with the frames one connection received."""
    mirror = StateMirror()
    for frame in frames:
        if frame.get("room") != room:
            continue
        if frame["t"] == "event":
            mirror.on_event(frame["seq"], frame["type"], frame["data"])
        elif frame["t"] == "error" and frame["code"] == "history_gone":
            mirror.invalidate()
    return mirror


async def server_view(client: RawClient, room: str) -> tuple[int, Any]:
    """(seq, data) of the `view` event answering a `look`, after every earlier event."""
    msg_id = await client.msg(room, "look")
    view = await client.recv_until("event", type="view")
    await client.recv_until("ack", id=msg_id)
    return view["seq"], view["data"]


async def act(client: RawClient, room: str, type: str, times: int) -> None:
    for _ in range(times):
        msg_id = await client.msg(room, type)
        await client.recv_until("ack", id=msg_id)


async def test_each_mirror_equals_its_view_and_other_hands_never_reach_a_client(server: Server) -> None:
    seat = await server.seat("cards", create=True)
    alice = await server.connect()
    await alice.join(seat)
    await act(alice, seat.room, "draw", 2)  # before bob joins: his @state must leave them out

    bob_seat = await server.seat(room=seat.room)
    bob_frames: list[dict[str, Any]] = []
    bob = await server.connect("msgpack")
    joined = await bob.join(bob_seat)
    await act(bob, seat.room, "draw", 1)
    await act(alice, seat.room, "draw", 1)
    await act(alice, seat.room, "play", 1)

    # Resume within the history: the missed patches are replayed, then a @state.
    _, view = await server_view(bob, seat.room)
    bob_frames += bob.frames
    since = bob.events(seat.room)[-1]["seq"]
    await bob.aclose()
    await act(alice, seat.room, "draw", 2)
    bob = await server.connect()
    rejoined = await bob.join(joined["rejoin"], room=seat.room, since=since)
    assert rejoined["t"] == "joined" and rejoined["resumed"] is True
    bob.next_id = rejoined["last_id"] + 1  # message ids continue across connections
    await act(bob, seat.room, "draw", 1)
    _, view = await server_view(bob, seat.room)
    assert mirror_of(bob.frames, seat.room).state == view
    bob_frames += bob.frames
    since = bob.events(seat.room)[-1]["seq"]
    await bob.aclose()

    # Resume past the history window: history_gone, then a fresh join gets the whole view.
    await act(alice, seat.room, "draw", HISTORY + 2)
    bob = await server.connect("msgpack")
    gone = await bob.join(rejoined["rejoin"], room=seat.room, since=since)
    assert gone["t"] == "error" and gone["code"] == "history_gone"
    again = await bob.join(rejoined["rejoin"], room=seat.room)
    assert again["t"] == "joined"
    bob.next_id = again["last_id"] + 1
    await act(alice, seat.room, "play", 1)
    seq, view = await server_view(bob, seat.room)
    mirror = mirror_of(bob.frames, seat.room)
    assert mirror.ready and mirror.state == view and mirror.seq < seq
    assert view["hand"] == [f"secret-{bob_seat.player}-0", f"secret-{bob_seat.player}-1"]
    bob_frames += bob.frames

    # Alice's mirror, live all along, equals her view too.
    _, alice_view = await server_view(alice, seat.room)
    assert mirror_of(alice.frames, seat.room).state == alice_view
    assert len(alice_view["hand"]) == 2 + 1 + 2 + HISTORY + 2 - 1 - 1

    everything_bob_got = json.dumps(bob_frames)
    assert f"secret-{seat.player}" not in everything_bob_got
    assert f"secret-{bob_seat.player}" in everything_bob_got  # the check can see secrets
    assert any(f["t"] == "event" and f["type"] == "@patch" for f in bob_frames)


async def test_a_step_that_changes_nothing_sends_no_patch(server: Server) -> None:
    seat = await server.seat("cards", create=True)
    alice = await server.connect()
    await alice.join(seat)
    await act(alice, seat.room, "look", 2)
    await act(alice, seat.room, "draw", 1)
    types = [e["type"] for e in alice.events(seat.room)]
    assert types == ["@state", "@presence", "view", "view", "@patch"]
