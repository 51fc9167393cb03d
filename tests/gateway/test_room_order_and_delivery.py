"""Promises 1 and 2 over real WebSockets: one order for everyone, effects applied once, resume."""

from __future__ import annotations

import asyncio

from gateway_harness import RawClient, Server


async def _drain_moves(client: RawClient, room: str, count: int) -> list[dict[str, object]]:
    async with asyncio.timeout(30):
        while len(client.events(room, "moved")) < count:
            await client.recv()
    return client.events(room, "moved")


async def test_concurrent_senders_see_identical_event_sequence(server: Server) -> None:
    first, seat = await server.player(create=True)
    others = [await server.player(await server.seat(room=seat.room), codec=c) for c in ("msgpack", "json")]
    clients = [first] + [c for c, _ in others]
    per_client = 40

    async def send_all(client: RawClient) -> None:
        for _ in range(per_client):
            await client.msg(seat.room, "move", {"n": 1})

    await asyncio.gather(*(send_all(c) for c in clients))
    total = per_client * len(clients)
    sequences = [await _drain_moves(c, seat.room, total) for c in clients]
    as_tuples = [[(e["seq"], e["data"]["p"], e["data"]["total"]) for e in seq] for seq in sequences]
    assert as_tuples[0] == as_tuples[1] == as_tuples[2]
    # Every move was applied once, in the order the room saw it.
    assert [t for _, _, t in as_tuples[0]] == list(range(1, total + 1))
    seqs = [s for s, _, _ in as_tuples[0]]
    assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + total))


async def test_resend_with_same_id_is_applied_once(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    await alice.msg(seat.room, "move", {"n": 5}, id=7)
    first = await alice.recv_until("ack", id=7)
    await alice.msg(seat.room, "move", {"n": 5}, id=7)
    second = await alice.recv_until("ack", id=7)
    assert first.get("dup") is None and second["dup"] is True
    await alice.msg(seat.room, "move", {"n": 1}, id=8)
    await alice.recv_until("ack", id=8)
    totals = [e["data"]["total"] for e in await _drain_moves(bob, seat.room, 2)]
    assert totals == [5, 6]


async def test_disconnect_and_resume_replays_missed_events_once_in_order(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob_seat = await server.seat(room=seat.room)
    bob = await server.connect()
    joined = await bob.join(bob_seat)
    await alice.msg(seat.room, "move", {"n": 1})
    await _drain_moves(bob, seat.room, 1)
    last_seq = bob.events(seat.room)[-1]["seq"]
    await bob.aclose()

    for _ in range(5):
        await alice.msg(seat.room, "move", {"n": 1})
    await _drain_moves(alice, seat.room, 6)

    bob2 = await server.connect("msgpack")
    rejoined = await bob2.join(joined["rejoin"], room=seat.room, since=last_seq)
    assert rejoined["t"] == "joined" and rejoined["resumed"] is True
    await alice.msg(seat.room, "move", {"n": 1})  # a live event right behind the replay
    await _drain_moves(bob2, seat.room, 6)
    while True:  # a duplicate would arrive right behind the last expected event
        try:
            await bob2.recv(timeout=0.2)
        except TimeoutError:
            break
    moves = bob2.events(seat.room, "moved")
    assert [m["data"]["total"] for m in moves] == [2, 3, 4, 5, 6, 7]
    seqs = [m["seq"] for m in moves]
    assert seqs == sorted(set(seqs)) and seqs[0] > last_seq


async def test_resend_after_reconnect_uses_last_applied_id(server: Server) -> None:
    alice_seat = await server.seat(create=True)
    alice = await server.connect()
    joined = await alice.join(alice_seat)
    await alice.msg(alice_seat.room, "move", {"n": 3}, id=1)
    await alice.recv_until("ack", id=1)
    await alice.msg(alice_seat.room, "move", {"n": 3}, id=2)
    await alice.aclose()  # maybe before the ack: the client cannot know whether 2 was applied

    again = await server.connect()
    rejoined = await again.join(joined["rejoin"], room=alice_seat.room)
    assert rejoined["last_id"] == 2  # so the client resends nothing; a blind resend is a duplicate
    await again.msg(alice_seat.room, "move", {"n": 3}, id=2)
    assert (await again.recv_until("ack", id=2))["dup"] is True
    await again.msg(alice_seat.room, "move", {"n": 1}, id=3)
    moved = await again.recv_until("event", type="moved")
    assert moved["data"]["total"] == 7


async def test_two_rooms_never_see_each_others_events(server: Server) -> None:
    a1, room_a = await server.player(create=True)
    a2, _ = await server.player(await server.seat(room=room_a.room))
    b1, room_b = await server.player(create=True)
    assert room_a.room != room_b.room
    for i in range(10):
        await a1.msg(room_a.room, "move", {"n": 1})
        await b1.msg(room_b.room, "move", {"n": 100 + i})
    await _drain_moves(a2, room_a.room, 10)
    await _drain_moves(b1, room_b.room, 10)
    for client, own in ((a1, room_a.room), (a2, room_a.room), (b1, room_b.room)):
        rooms = {f.get("room") for f in client.frames if "room" in f}
        assert rooms == {own}
    assert all(e["data"]["n"] >= 100 for e in b1.events(room_b.room, "moved"))
    assert all(e["data"]["n"] == 1 for e in a2.events(room_a.room, "moved"))


async def test_send_to_one_player_reaches_only_them(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    await alice.msg(seat.room, "whisper")
    await alice.recv_until("event", type="secret")
    await alice.msg(seat.room, "move", {"n": 1})
    await _drain_moves(bob, seat.room, 1)
    assert bob.events(seat.room, "secret") == []


async def test_timers_fire_in_due_order(server: Server) -> None:
    alice, seat = await server.player(create=True)
    await alice.msg(seat.room, "timers")
    async with asyncio.timeout(10):
        while len(alice.events(seat.room, "timer")) < 3:
            await alice.recv()
    assert [e["data"]["label"] for e in alice.events(seat.room, "timer")] == ["a", "b", "c"]
