"""Promise 2 over real WebSockets: message ids belong to the player's producer session.

Ids outlive a membership (grace ran out, then a rejoin), inputs of a replaced connection are
refused or ignored and their receipts never reach the newer connection, skipped ids are applied
once when they come, and a ban sticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from gateway_harness import FRAME_TIMEOUT_S, RawClient, Server, serving

from roomwire import App
from roomwire.backends.records import Input, JoinInput, LeaveInput, MessageInput
from roomwire.runtime.ids import MAX_GAPS
from roomwire.testing import serve_app


class Move(msgspec.Struct):
    """A step count."""

    n: int


@dataclass
class Gate:
    """Holds the room inside a handler until released, so tests can order inputs behind it."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_game(gate: Gate) -> App:
    """Room types `arena` (default grace), `brief` (0.3 s grace) and `slow` (1 message/s)."""
    app = App("producer-sessions")
    for name, grace, rate in (("arena", 20.0, None), ("brief", 0.3, None), ("slow", 20.0, 1.0)):
        room_type = app.room(name, max_players=4, rate_limit=rate, reconnect_grace_s=grace, history=500)

        def create(room: Any, options: dict[str, Any]) -> None:
            room.state["total"] = 0

        def move(room: Any, player: Any, msg: Move) -> None:
            room.state["total"] += msg.n
            room.broadcast("moved", p=player.id, n=msg.n, total=room.state["total"])

        async def hold(room: Any, player: Any, msg: Any) -> None:
            gate.entered.set()
            await gate.release.wait()

        def cheat(room: Any, player: Any, msg: Any) -> None:
            room.kick(player, "cheating", ban=True)

        def leave(room: Any, player: Any, reason: str) -> None:
            room.broadcast("gone", p=player.id, reason=reason)

        room_type.on_create(create)
        room_type.on_leave(leave)
        room_type.add_message_handler("move", move)
        room_type.add_message_handler("hold", hold)
        room_type.add_message_handler("cheat", cheat)
    return app


@pytest.fixture
async def game() -> AsyncIterator[tuple[Server, Gate]]:
    """The game on a free port (embedded backend), and its gate."""
    gate = Gate()
    app = make_game(gate)
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv, gate
    gate.release.set()


async def _wait_for_input(server: Server, room: str, matches: Callable[[Input], bool]) -> None:
    """Until an input that `matches` is in the room's inbound log (appended, not yet applied)."""
    gateway = server.app.gateway
    assert gateway is not None
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while True:
            if any(matches(item) for _, item in await gateway.backend.read_inputs(room, 0, 1000, 0)):
                return
            await asyncio.sleep(0.01)  # the log has no "appended" event to wait on from here


async def _frames_until(client: RawClient, t: str, **match: Any) -> list[dict[str, Any]]:
    """Every frame received up to and including the first of kind `t` matching `match`."""
    start = len(client.frames)
    await client.recv_until(t, **match)
    return client.frames[start:]


async def _hold_the_room(client: RawClient, room: str, gate: Gate) -> None:
    await client.msg(room, "hold", id=None)
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await gate.entered.wait()


async def test_a_resend_after_the_grace_ran_out_is_not_applied_twice(game: tuple[Server, Gate]) -> None:
    server, _ = game
    seat = await server.seat("brief", create=True)
    alice = await server.connect()
    joined = await alice.join(seat)
    bob, _ = await server.player(await server.seat("brief", room=seat.room))
    await alice.msg(seat.room, "move", {"n": 5}, id=1)
    await alice.recv_until("ack", id=1)  # ... and suppose this ack was lost with the connection
    await alice.aclose()
    gone = await bob.recv_until("event", type="gone")
    assert gone["data"] == {"p": seat.player, "reason": "disconnected"}

    again = await server.connect()
    rejoined = await again.join(joined["rejoin"], room=seat.room)
    assert rejoined["t"] == "joined" and rejoined["last_id"] == 1  # a new membership, same ids
    await again.msg(seat.room, "move", {"n": 5}, id=1)  # protocol §9: resend every pending message
    assert (await again.recv_until("ack", id=1))["dup"] is True
    await again.msg(seat.room, "move", {"n": 1}, id=2)
    moved = await again.recv_until("event", type="moved")
    assert moved["data"]["total"] == 6  # the first move counted once


async def test_a_message_of_a_replaced_connection_is_refused_and_its_receipt_never_reaches_the_new_one(
    game: tuple[Server, Gate],
) -> None:
    server, gate = game
    seat = await server.seat(create=True)
    a = await server.connect()
    joined = await a.join(seat)
    carol, _ = await server.player(await server.seat(room=seat.room))
    await a.msg(seat.room, "move", {"n": 1}, id=1)
    await a.recv_until("ack", id=1)

    await _hold_the_room(carol, seat.room, gate)
    b = await server.connect()
    await b.send({"t": "join", "room": seat.room, "seat": joined["rejoin"]})
    await _wait_for_input(server, seat.room, lambda i: isinstance(i, JoinInput) and i.player == seat.player)
    await a.msg(seat.room, "move", {"n": 10}, id=2)  # in flight: A does not know it was replaced
    await _wait_for_input(server, seat.room, lambda i: isinstance(i, MessageInput) and i.id == 2)
    gate.release.set()

    rejoined = await b.recv_until("joined", room=seat.room)
    assert rejoined["last_id"] == 1
    assert (await a.recv_until("left", room=seat.room))["reason"] == "replaced"
    await b.msg(seat.room, "move", {"n": 1}, id=2)
    frames = await _frames_until(b, "ack", id=2)
    assert frames[-1].get("dup") is None  # B's own message was applied, not taken for A's
    moved = [f for f in frames if f["t"] == "event" and f["type"] == "moved"]
    assert [m["data"]["total"] for m in moved] == [2]  # A's move was refused, B's applied
    await b.msg(seat.room, "move", {"n": 1}, id=3)
    assert not [
        f for f in await _frames_until(b, "ack", id=3) if f["t"] in ("ack", "reject") and f["id"] != 3
    ]


async def test_a_leave_of_a_replaced_connection_does_not_remove_the_new_one(
    game: tuple[Server, Gate],
) -> None:
    server, gate = game
    seat = await server.seat(create=True)
    a = await server.connect()
    joined = await a.join(seat)
    carol, _ = await server.player(await server.seat(room=seat.room))

    await _hold_the_room(carol, seat.room, gate)
    b = await server.connect()
    await b.send({"t": "join", "room": seat.room, "seat": joined["rejoin"]})
    await _wait_for_input(server, seat.room, lambda i: isinstance(i, JoinInput) and i.player == seat.player)
    await a.send({"t": "leave", "room": seat.room})
    assert (await a.recv_until("left", room=seat.room))["reason"] == "left"
    await _wait_for_input(server, seat.room, lambda i: isinstance(i, LeaveInput))
    gate.release.set()

    await b.recv_until("joined", room=seat.room)
    await b.msg(seat.room, "move", {"n": 3}, id=1)
    frames = await _frames_until(b, "ack", id=1)
    assert [f["data"]["total"] for f in frames if f["t"] == "event" and f["type"] == "moved"] == [3]
    assert not [f for f in frames if f["t"] in ("left", "reject", "error")]
    await carol.msg(seat.room, "move", {"n": 1}, id=1)
    assert (await b.recv_until("event", type="moved"))["data"]["total"] == 4  # B still receives


async def test_a_skipped_id_is_applied_once_when_it_comes_and_a_forgotten_one_is_refused(
    game: tuple[Server, Gate],
) -> None:
    server, _ = game
    alice, seat = await server.player(create=True)
    room = seat.room
    for msg_id, n in ((1, 1), (3, 100), (2, 10)):  # 2 was refused before the room saw it, say
        await alice.msg(room, "move", {"n": n}, id=msg_id)
        ack = await alice.recv_until("ack", id=msg_id)
        assert ack.get("dup") is None
    await alice.msg(room, "move", {"n": 10}, id=2)
    assert (await alice.recv_until("ack", id=2))["dup"] is True
    assert [e["data"]["total"] for e in alice.events(room, "moved")] == [1, 101, 111]

    # One skipped id more than the room remembers: the oldest (4) is forgotten.
    skipping = [5 + 2 * i for i in range(MAX_GAPS + 1)]
    for msg_id in skipping:
        await alice.msg(room, "move", {"n": 0}, id=msg_id)
    await alice.recv_until("ack", id=skipping[-1])
    for msg_id in (4, 3):  # skipped and consumed alike: the room no longer knows
        await alice.msg(room, "move", {"n": 1000}, id=msg_id)
        reject = await alice.recv_until("reject", id=msg_id)
        assert reject["code"] == "id_expired"
    await alice.msg(room, "move", {"n": 1}, id=6)  # still remembered as skipped: applied
    assert (await alice.recv_until("ack", id=6)).get("dup") is None
    assert alice.events(room, "moved")[-1]["data"]["total"] == 112  # the forgotten ones: not applied


async def test_a_banned_player_cannot_come_back(game: tuple[Server, Gate]) -> None:
    server, _ = game
    token = await server.guest()
    alice, seat = await server.player(token=token, create=True)
    await server.player(await server.seat(room=seat.room))  # so the room outlives alice
    spare = await server.seat(room=seat.room, token=token)  # a lobby seat from before the ban
    joined = alice.frames[-1]
    assert joined["t"] == "joined"
    await alice.msg(seat.room, "cheat", id=1)
    left = await alice.recv_until("left", room=seat.room)
    assert left == {"t": "left", "room": seat.room, "reason": "removed", "detail": "cheating"}

    for token_to_try in (joined["rejoin"], spare.seat):
        again = await server.connect()
        refused = await again.join(token_to_try, room=seat.room)
        assert refused["t"] == "error" and refused["code"] == "forbidden", refused
        assert "banned" in refused["message"]

    headers = {"authorization": f"Bearer {token}"}
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while True:  # the lobby learns of the ban right after the room committed it
            response = await server.http.post(f"/rooms/{seat.room}/seats", headers=headers)
            if response.status_code != 200:
                break
            await asyncio.sleep(0.02)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "banned" in response.json()["error"]["message"]
    other = await server.seat(room=seat.room)  # others still get seats
    assert other.room == seat.room


async def _send_until_answered(client: RawClient, room: str, msg_id: int, n: int) -> dict[str, Any]:
    """Send a move until the room answers it (a `rate_limited` refusal does not use the id)."""
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while True:
            await client.msg(room, "move", {"n": n}, id=msg_id)
            while (answer := await client.recv())["t"] not in ("ack", "reject") or answer["id"] != msg_id:
                pass
            if answer["t"] == "ack" or answer["code"] != "rate_limited":
                return answer
            await asyncio.sleep(0.3)  # the rate limiter refills with time: nothing to wait on


async def test_a_message_refused_on_the_way_and_resent_after_a_newer_one_is_applied_once(
    game: tuple[Server, Gate],
) -> None:
    server, _ = game
    alice, seat = await server.player(await server.seat("slow", create=True))
    room = seat.room
    for msg_id in (1, 2):  # the burst: two tokens
        assert (await _send_until_answered(alice, room, msg_id, 1)).get("dup") is None
    await alice.msg(room, "move", {"n": 10}, id=3)
    refused = await alice.recv_until("reject", id=3)
    assert refused["code"] == "rate_limited"  # refused before the room saw it, like `unavailable`
    assert (await _send_until_answered(alice, room, 4, 100)).get("dup") is None
    resent = await _send_until_answered(alice, room, 3, 10)  # the client's pending id 3, resent
    assert resent["t"] == "ack" and resent.get("dup") is None  # applied now, not taken for a dup
    again = await _send_until_answered(alice, room, 3, 10)
    assert again["t"] == "ack" and again["dup"] is True
    assert [e["data"]["total"] for e in alice.events(room, "moved")] == [1, 2, 102, 112]
