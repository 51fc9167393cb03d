"""What a hostile client can try against a room over real sockets, and what must hold anyway.

* A connection that the server closes while its join is on the way (here: it goes silent
  past the heartbeat while the room is busy) must not leave the player counted as connected
  for ever: the room records a disconnect for that join, so the reconnect grace runs out.
* A player's message rate limit must hold across their rejoins: a new connection (or a leave
  and a join) must not refill the bucket.
* So must the join and leave rate: a client that opens a new connection whenever one has used
  its joins and leaves must not churn the room (leave and join hooks, broadcasts) faster.
* A join that was on its way when the room ended is answered `room_closed` (protocol section 6),
  not `internal`, which tells a client to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from gateway_harness import FRAME_TIMEOUT_S, RawClient, Seat, Server, serving

from roomwire import App, GatewaySettings
from roomwire.testing import serve_app

HEARTBEAT_S = 0.5  # the server closes a silent connection after two of these


class Move(msgspec.Struct):
    """A step count."""

    n: int


@dataclass
class Gate:
    """Holds the room inside a handler until released, so a join waits behind it."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_game(gate: Gate) -> App:
    """Room types `brief` (0.3 s reconnect grace) and `slow` (1 message/s per player)."""
    app = App("hostile-clients", settings=GatewaySettings(heartbeat_s=HEARTBEAT_S))
    for name, grace, rate in (("brief", 0.3, None), ("slow", 20.0, 1.0)):
        room_type = app.room(name, max_players=4, rate_limit=rate, reconnect_grace_s=grace, history=500)

        def move(room: Any, player: Any, msg: Move) -> None:
            room.broadcast("moved", p=player.id, n=msg.n)

        async def hold(room: Any, player: Any, msg: Any) -> None:
            gate.entered.set()
            await gate.release.wait()

        def leave(room: Any, player: Any, reason: str) -> None:
            room.broadcast("gone", p=player.id, reason=reason)

        async def hold_then_end(room: Any, player: Any, msg: Any) -> None:
            gate.entered.set()
            await gate.release.wait()
            room.end("game over")

        def join(room: Any, player: Any) -> None:
            room.broadcast("hi", p=player.id)

        room_type.on_join(join)
        room_type.on_leave(leave)
        room_type.add_message_handler("move", move)
        room_type.add_message_handler("hold", hold)
        room_type.add_message_handler("hold_then_end", hold_then_end)
    return app


@pytest.fixture
async def game() -> AsyncIterator[tuple[Server, Gate]]:
    """The game on a free port (embedded backend), and its gate."""
    gate = Gate()
    app = make_game(gate)
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv, gate
    gate.release.set()


@contextlib.asynccontextmanager
async def pinging(client: RawClient) -> AsyncIterator[None]:
    """Keep a client alive past the short heartbeat while the test waits on something else."""

    async def ping_forever() -> None:
        while True:
            await client.send({"t": "ping"})
            await asyncio.sleep(HEARTBEAT_S / 4)

    task = asyncio.create_task(ping_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_join_whose_connection_the_server_closed_on_the_way_ends_in_a_disconnect(
    game: tuple[Server, Gate],
) -> None:
    server, gate = game
    seat = await server.seat("brief", create=True)
    bob = await server.connect()
    assert (await bob.join(seat))["t"] == "joined"
    async with pinging(bob):
        await bob.msg(seat.room, "hold", id=None)
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await gate.entered.wait()
        ghost_seat = await server.seat("brief", room=seat.room)
        ghost = await server.connect()
        await ghost.send({"t": "join", "room": seat.room, "seat": ghost_seat.seat})
        # Silent past two heartbeats while its join waits behind the busy room: the server
        # closes it (4003) before the join is answered.
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await ghost.ws.wait_closed()
        assert ghost.ws.close_code == 4003
        gate.release.set()
        # The join is applied after the close; the room must still learn that this player's
        # connection is gone, so the 0.3 s grace runs out and the leave hook runs.
        gone = await bob.recv_until("event", type="gone")
    assert gone["data"] == {"p": ghost_seat.player, "reason": "disconnected"}


async def test_the_message_rate_limit_holds_across_rejoins(game: tuple[Server, Gate]) -> None:
    server, _ = game
    seat = await server.seat("slow", create=True)
    client = await server.connect()
    joined = await client.join(seat)
    burst, rate = 2, 1.0  # the `slow` type: 1 message/s, bursts of 2 s worth
    started = time.monotonic()
    applied, next_id = 0, 1
    for _ in range(4):  # 8 messages: refused ones stay below the 4004 close (4 x burst)
        for _ in range(2):
            await client.msg(seat.room, "move", {"n": 1}, id=next_id)
            next_id += 1
        answers = []
        while len(answers) < 2:
            frame = await client.recv()
            if frame["t"] in ("ack", "reject"):
                answers.append(frame)
        applied += sum(1 for f in answers if f["t"] == "ack")
        # A new connection with the rejoin token: the same player in the same room.
        again = await server.connect()
        joined = await again.join(joined["rejoin"], room=seat.room)
        assert joined["t"] == "joined", joined
        await client.aclose()
        client = again
    elapsed = time.monotonic() - started
    assert applied <= burst + rate * elapsed + 1, f"{applied} messages applied in {elapsed:.2f} s"


async def test_leaves_are_limited_per_player_across_connections(game: tuple[Server, Gate]) -> None:
    server, _ = game
    seat = await server.seat("brief", create=True)
    watcher, _ = await server.player(await server.seat("brief", room=seat.room))
    async with pinging(watcher):  # keeps the room alive (it ends when its last player leaves)
        await _churn(server, seat)


async def _churn(server: Server, seat: Seat) -> None:
    """50 leave+join pairs of one player, on a new connection every 5 pairs."""
    client = await server.connect()
    joined = await client.join(seat)
    burst, rate = 20, 10.0  # GatewaySettings.join_rate_per_s: 10/s, bursts of 20
    started = time.monotonic()
    applied = 0
    for _ in range(10):  # 50 leave+join pairs, 5 per connection: under each connection's burst
        for _ in range(5):
            await client.send({"t": "leave", "room": seat.room})
            answer = await client.join(joined["rejoin"], room=seat.room)
            if answer["t"] == "joined":
                applied += 1
                joined = answer
        again = await server.connect()
        answer = await again.join(joined["rejoin"], room=seat.room)
        await client.aclose()
        client = again
        if answer["t"] == "joined":
            joined = answer
        else:  # refused for the rate: wait for a token, so the next connection starts in the room
            await asyncio.sleep(2 / rate)
            joined = await client.join(joined["rejoin"], room=seat.room)
            assert joined["t"] == "joined", joined
    elapsed = time.monotonic() - started
    # Each pair needs a leave, and the player's leaves share one bucket over their connections.
    assert applied <= burst + rate * elapsed + 2, f"{applied} rejoins applied in {elapsed:.2f} s"


async def test_a_join_on_its_way_when_the_room_ends_is_answered_room_closed(
    game: tuple[Server, Gate], caplog: pytest.LogCaptureFixture
) -> None:
    server, gate = game
    seat = await server.seat("brief", create=True)
    bob = await server.connect()
    assert (await bob.join(seat))["t"] == "joined"
    late_seat = await server.seat("brief", room=seat.room)
    async with pinging(bob):
        await bob.msg(seat.room, "hold_then_end", id=None)
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await gate.entered.wait()
        late = await server.connect()
        async with pinging(late):
            await late.send({"t": "join", "room": seat.room, "seat": late_seat.seat})
            await asyncio.sleep(0.2)  # the join is in the room's log, behind the step that ends it
            gate.release.set()
            answer = await late.recv_until("error", room=seat.room)
    assert answer["code"] == "room_closed", answer
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
