"""Relay rooms over real sockets: one total order for all, resume, addressing, same limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import RawClient, Server, serving

from roomwire import App
from roomwire.testing import serve_app


def relay_app() -> App:
    app = App("relay-tests")
    app.relay("chat", max_players=4, rate_limit=None, idle_timeout_s=60, host=True)
    app.relay("slow", max_players=2, rate_limit=1.0)
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = relay_app()
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def relayed(client: RawClient, room: str, count: int) -> list[tuple[int, str, Any]]:
    """(seq, type, data) of `say` events until `count` of them arrived."""
    while len(client.events(room, "say")) < count:
        await client.recv()
    return [(e["seq"], e["data"]["from"], e["data"]["data"]) for e in client.events(room, "say")]


async def test_concurrent_senders_all_see_one_order_and_a_resumed_client_gets_the_missed(
    server: Server,
) -> None:
    seat = await server.seat("chat", create=True)
    ann = await server.connect()
    await ann.join(seat)
    bob_seat = await server.seat(room=seat.room)
    bob = await server.connect("msgpack")
    joined = await bob.join(bob_seat)
    cyd, _ = await server.player(await server.seat(room=seat.room))

    async def chatter(client: RawClient, name: str) -> None:
        for i in range(10):
            await client.msg(seat.room, "say", f"{name}-{i}", id=None)

    await asyncio.gather(chatter(ann, "ann"), chatter(bob, "bob"), chatter(cyd, "cyd"))
    orders = [await relayed(c, seat.room, 30) for c in (ann, bob, cyd)]
    assert orders[0] == orders[1] == orders[2]
    seqs = [s for s, _, _ in orders[0]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 30
    for name in ("ann", "bob", "cyd"):  # each sender's own messages keep their order
        assert [d for _, _, d in orders[0] if d.startswith(name)] == [f"{name}-{i}" for i in range(10)]

    # bob drops; ann and cyd go on; bob resumes from his last seq and gets exactly the rest.
    since = bob.events(seat.room)[-1]["seq"]
    await bob.aclose()
    await chatter(ann, "later")
    await relayed(cyd, seat.room, 40)
    bob2 = await server.connect()
    rejoined = await bob2.join(joined["rejoin"], room=seat.room, since=since)
    assert rejoined["resumed"] is True
    missed = await relayed(bob2, seat.room, 10)
    assert missed == (await relayed(cyd, seat.room, 40))[30:]

    # A message naming bob reaches bob and ann (the sender), not cyd.
    await ann.msg(seat.room, "whisper", {"@to": [bob_seat.player], "text": "psst"})
    got = await bob2.recv_until("event", type="whisper")
    assert got["data"] == {"from": seat.player, "data": {"@to": [bob_seat.player], "text": "psst"}}
    await ann.recv_until("event", type="whisper")
    await cyd.msg(seat.room, "say", "after", id=None)
    await relayed(cyd, seat.room, 41)  # the whisper's seq is before this one's
    assert "psst" not in json.dumps(cyd.frames)


async def test_the_first_player_is_host_and_the_next_one_is_announced_when_it_leaves(server: Server) -> None:
    seat = await server.seat("chat", create=True)
    ann = await server.connect()
    await ann.join(seat)
    bob, bob_seat = await server.player(await server.seat(room=seat.room))
    told = await bob.recv_until("event", type="@host")  # bob learns the host as he joins
    assert told["data"] == {"player": seat.player}
    await ann.send({"t": "leave", "room": seat.room})
    announced = await bob.recv_until("event", type="@host", data={"player": bob_seat.player})
    assert announced["seq"] > 0


async def test_relay_rooms_keep_the_room_rate_limit(server: Server) -> None:
    ann, seat = await server.player(type="slow", create=True)
    for _ in range(6):
        await ann.msg(seat.room, "say", "spam")
    rejected = await ann.recv_until("reject")
    assert rejected["code"] == "rate_limited"
