"""Promise 7 over real WebSockets: bad input gets a clear error and hurts nobody else."""

from __future__ import annotations

import json

import msgspec
from gateway_harness import RawClient, Server


async def _still_works(client: RawClient, room: str, other: RawClient) -> None:
    """The connection and the room still work for this client and for the other player."""
    await client.send({"t": "ping", "id": 42})
    assert (await client.recv_until("pong"))["id"] == 42
    msg_id = await client.msg(room, "move", {"n": 1})
    await client.recv_until("ack", id=msg_id)
    await other.recv_until("event", type="moved")


async def test_schema_violation_is_rejected_with_the_field(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    msg_id = await alice.msg(seat.room, "move", {"n": "three"})
    reject = await alice.recv_until("reject", id=msg_id)
    assert reject["code"] == "invalid_message" and "$.n" in reject["message"]
    await _still_works(alice, seat.room, bob)


async def test_unknown_message_type_is_rejected(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    msg_id = await alice.msg(seat.room, "fly", {"n": 1})
    reject = await alice.recv_until("reject", id=msg_id)
    assert reject["code"] == "unknown_type" and "fly" in reject["message"]
    await alice.msg(seat.room, "fly", {"n": 1}, id=None)
    error = await alice.recv_until("error", room=seat.room)
    assert error["code"] == "unknown_type"
    await _still_works(alice, seat.room, bob)


async def test_handler_exception_leaves_room_running_and_state_unchanged(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    await alice.msg(seat.room, "move", {"n": 2})
    msg_id = await alice.msg(seat.room, "boom")
    reject = await alice.recv_until("reject", id=msg_id)
    assert reject["code"] == "internal" and reject["ref"] and "a bug" not in reject["message"]
    await alice.msg(seat.room, "move", {"n": 1})
    moved = [await bob.recv_until("event", type="moved") for _ in range(2)]
    assert [m["data"]["total"] for m in moved] == [2, 3]  # the +1000 of the failed handler is gone
    assert bob.events(seat.room, "never") == []  # and so is its event
    seqs = [e["seq"] for e in bob.events(seat.room)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap left by the dropped event


async def test_oversized_frame_is_refused_before_parsing(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    await alice.ws.send(json.dumps({"t": "msg", "room": seat.room, "type": "move", "data": "x" * 70_000}))
    error = await alice.recv_until("error")
    assert error["code"] == "frame_too_large"
    # Under the frame limit but over the room type's max_message_bytes (16 KiB by default).
    msg_id = await alice.msg(seat.room, "move", {"n": 1, "pad": "y" * 20_000})
    assert (await alice.recv_until("reject", id=msg_id))["code"] == "message_too_large"
    await _still_works(alice, seat.room, bob)


async def test_invalid_json_and_msgpack_get_bad_frame(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room), codec="msgpack")
    await alice.ws.send("{not json")
    assert (await alice.recv_until("error"))["code"] == "bad_frame"
    await alice.ws.send(json.dumps({"t": "teleport"}))
    assert (await alice.recv_until("error"))["code"] == "bad_frame"
    await bob.ws.send(b"\xc1\xff\x00")  # 0xc1 is never valid MessagePack
    assert (await bob.recv_until("error"))["code"] == "bad_frame"
    await bob.ws.send(msgspec.msgpack.encode({"t": "msg", "room": 5}))
    assert (await bob.recv_until("error"))["code"] == "bad_frame"
    await _still_works(alice, seat.room, bob)
    await _still_works(bob, seat.room, alice)


async def test_frames_before_hello_get_not_ready(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect(hello=False)
    await client.send({"t": "join", "room": seat.room, "seat": seat.seat})
    assert (await client.recv_until("error"))["code"] == "not_ready"
    await client.hello()
    assert (await client.join(seat))["t"] == "joined"


async def test_unsupported_version_is_refused_and_closed(server: Server) -> None:
    client = await server.connect(hello=False)
    await client.send({"t": "hello", "v": 99})
    assert (await client.recv_until("error"))["code"] == "unsupported_version"
    await client.ws.wait_closed()
    assert client.ws.close_code == 4000


async def test_message_to_a_room_not_joined_is_refused(server: Server) -> None:
    alice, _ = await server.player(create=True)
    other = await server.seat(create=True)
    msg_id = await alice.msg(other.room, "move", {"n": 1})
    assert (await alice.recv_until("reject", id=msg_id))["code"] == "not_joined"


async def test_repeated_protocol_errors_close_the_connection(server: Server) -> None:
    client = await server.connect()
    for _ in range(10):
        await client.ws.send("garbage")
    await client.ws.wait_closed()
    assert client.ws.close_code == 4000
