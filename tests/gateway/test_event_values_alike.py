"""Event data reaches JSON and MessagePack players alike, or its step fails; nesting is bounded.

Found by an outside probe: the checkpoint only asked whether each codec *could* encode an event,
so NaN reached JSON players as null, an int key as a string, bytes as base64, while MessagePack
players got the originals; and an event nested near Python's recursion limit passed the
checkpoint but raised RecursionError in the fan-out (a deeper stack, inside a frame), which
stopped the whole commit's delivery: every player lost its events and the sender its ack.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from gateway_harness import Server, serving

from roomwire import App
from roomwire.backends.redis import RedisBackend
from roomwire.testing import serve_app

REDIS_URL = "redis://127.0.0.1:6379/0"

ODD: dict[str, Any] = {
    "nan": float("nan"),
    "inf": float("inf"),
    "int key": {1: "a"},
    "int and str key": {1: "a", "1": "b"},
    "bytes": b"xy",
    "aware datetime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
}


class Colour(enum.Enum):
    """An enum both codecs send as its value."""

    RED = "red"


class Spot(msgspec.Struct):
    """A Struct both codecs send as a map."""

    x: int
    at: uuid.UUID


def nest(depth: int) -> Any:
    """A list nested `depth` levels deep."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def values_app() -> App:
    """Handlers that broadcast odd values, nested lists, and what they are sent."""
    app = App("event-values")
    room_type = app.room("echo", max_players=4, rate_limit=None, idle_timeout_s=60)

    @room_type.message("odd")
    def odd(room: Any, player: Any, msg: Any) -> None:
        room.state["touched"] = True
        room.broadcast("odd", v=ODD[msg])

    @room_type.message("plain")
    def plain(room: Any, player: Any, msg: Any) -> None:
        spot = Spot(1, uuid.UUID(int=7))
        room.broadcast("plain", colour=Colour.RED, spot=spot, when=datetime.date(2026, 1, 2))

    @room_type.message("nest")
    def nested(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("nested", v=nest(int(msg)))

    @room_type.message("say")
    def say(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("said", v=msg)

    return app


@pytest.fixture(params=["memory", "redis"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    # On Redis the fan-out runs in the pub/sub reader's task: another stack than the worker's.
    app = values_app()
    backend = RedisBackend(REDIS_URL, f"t-{uuid.uuid4().hex[:12]}") if request.param == "redis" else None
    async with serve_app(app, backend) as base, serving(base, app) as srv:
        yield srv


async def _pair(server: Server) -> tuple[Any, Any, str]:
    packer, seat = await server.player(create=True, type="echo", codec="msgpack")
    reader, _ = await server.player(await server.seat("echo", room=seat.room))  # JSON
    return packer, reader, seat.room


async def _answer(client: Any, msg_id: int | None) -> dict[str, Any]:
    """The ack or reject answering `msg_id` (5 s at most: a lost answer fails fast)."""
    while True:
        frame: dict[str, Any] = await client.recv(timeout=5)
        if frame.get("id") == msg_id and frame["t"] in ("ack", "reject"):
            return frame


async def test_event_data_the_codecs_carry_differently_fails_its_step(server: Server) -> None:
    packer, reader, room = await _pair(server)
    for kind in ODD:
        msg_id = await packer.msg(room, "odd", kind)
        answer = await _answer(packer, msg_id)
        assert answer["t"] == "reject" and answer["code"] == "internal", (kind, answer)
    said = await reader.msg(room, "say", "after")
    await reader.recv_until("ack", id=said)
    await packer.recv_until("event", type="said")
    assert not [f for f in packer.frames + reader.frames if f.get("type") == "odd"]
    # What both codecs turn into the same plain data still goes out, as that data.
    sent = await packer.msg(room, "plain")
    await packer.recv_until("ack", id=sent)
    await reader.recv_until("event", type="plain")
    seen = [c.events(room, "plain")[0]["data"] for c in (packer, reader)]
    expected = {"colour": "red", "spot": {"x": 1, "at": str(uuid.UUID(int=7))}, "when": "2026-01-02"}
    assert seen == [expected, expected]


async def test_an_event_nested_near_the_recursion_limit_never_stops_the_delivery(server: Server) -> None:
    packer, reader, room = await _pair(server)
    for depth in (*range(123, 134), *range(900, 1000, 2)):
        msg_id = await packer.msg(room, "nest", depth)
        answer = await _answer(packer, msg_id)  # on main: no answer at some depth (delivery died)
        # The event's data is {"v": nest(depth)}: depth + 1 levels, at most 128 allowed.
        expected = ("ack", None) if depth < 128 else ("reject", "internal")
        assert (answer["t"], answer.get("code")) == expected, depth
        said = await reader.msg(room, "say", depth)
        await reader.recv_until("ack", timeout=5, id=said)
        event = await packer.recv_until("event", timeout=5, type="said")
        assert event["data"]["v"] == depth
    nested = [e["data"]["v"] for e in reader.events(room, "nested")]
    assert [nest(d) for d in range(123, 128)] == nested


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_message_data_nested_deeper_than_100_is_a_bad_frame(server: Server, codec: str) -> None:
    client, seat = await server.player(create=True, type="echo", codec=codec)
    room = seat.room
    await client.send({"t": "msg", "room": room, "type": "say", "data": {"v": nest(100)}, "id": 1})
    error = await client.recv_until("error")
    assert error["code"] == "bad_frame" and "deeper than 100" in error["message"], error
    await client.send({"t": "msg", "room": room, "type": "say", "data": nest(100), "id": 1})
    await client.recv_until("ack", id=1)  # and the handler may wrap it: events nest up to 128


def large_app() -> App:
    """A room type whose handler broadcasts a string of the size it is sent."""
    app = App("event-size")
    room_type = app.room("big", max_players=4, rate_limit=None, idle_timeout_s=60, history=16)

    @room_type.message("big")
    def big(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("big", v="x" * int(msg))

    @room_type.message("say")
    def say(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("said", v=msg)

    return app


async def test_an_event_larger_than_a_send_queue_fails_its_step_not_every_connection() -> None:
    # On main a 9 MiB event closed every player of the room 4002 (it alone overflows the 8 MiB
    # send queue), and each resume replayed it and was closed again while the history kept it.
    app = large_app()
    async with serve_app(app) as base, serving(base, app) as server:
        a, seat = await server.player(create=True, type="big", codec="msgpack")
        b, _ = await server.player(await server.seat("big", room=seat.room))
        room = seat.room
        for size, outcome in ((900_000, "ack"), (9 * 1024 * 1024, "reject"), (2 * 1024 * 1024, "reject")):
            sent = await a.msg(room, "big", size)
            answer = await _answer(a, sent)
            assert answer["t"] == outcome, (size, answer)
        said = await b.msg(room, "say", "still here")
        await b.recv_until("ack", id=said)
        await a.recv_until("event", type="said")
        assert [len(e["data"]["v"]) for e in b.events(room, "big")] == [900_000]
