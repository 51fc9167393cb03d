"""The receive fast path: on the embedded backend a message that arrives while its connection is
idle is handled inside the socket's callback. It must keep each connection's order: what arrives
behind a join (which waits for the room) waits too, and bad input is answered as before."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
from gateway_harness import FRAME_TIMEOUT_S, RawClient, Seat, Server, make_app, serving, uvicorn_on_free_port
from websockets.exceptions import ConnectionClosed

from roomwire.gateway.asgi import Gateway
from roomwire.gateway.server import uvicorn_config

MOVES = 50


@pytest.fixture
def through_task(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The messages that went through the connection's task (not the fast path), from now on."""
    handled: list[Any] = []
    original = Gateway._on_frame

    async def counted(self: Gateway, conn: Any, data: Any) -> None:
        handled.append(data)
        await original(self, conn, data)

    monkeypatch.setattr(Gateway, "_on_frame", counted)
    return handled


async def _parked_player(server: Server, through_task: list[Any] | None = None) -> tuple[RawClient, Seat]:
    """A player in a new room whose server task waits in receive(); `through_task` starts over.

    After a join the task resumes a few loop turns after `joined` went out. A ping is answered
    on the fast path when the task already waits, or else by the task, which is back in
    receive() before the pong leaves at the end of that loop turn.
    """
    client, seat = await server.player(create=True)
    await client.send({"t": "ping", "id": 99})
    await client.recv_until("pong", id=99)
    if through_task is not None:
        through_task.clear()
    return client, seat


async def _moves_acked_one_by_one(client: RawClient, room: str, count: int) -> None:
    """Send `count` moves (n = 1, 2, ...), each once the previous one was acked."""
    for n in range(1, count + 1):
        msg_id = await client.msg(room, "move", {"n": n})
        (answer,) = await _acks(client, room, 1)
        assert (answer["t"], answer["id"]) == ("ack", msg_id)


async def _close_code(client: RawClient) -> int | None:
    """Read until the server closes the connection; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while True:
                await client.recv()  # frames sent before the close
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def _send_in_one_write(client: RawClient, frames: list[dict[str, Any]]) -> None:
    """Frame every message first, then write them with one call: the server reads them together."""
    ws = client.ws
    for frame in frames:
        ws.protocol.send_text(json.dumps(frame).encode())
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


async def _acks(client: RawClient, room: str, count: int) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while len(answers) < count:
            frame = await client.recv()
            if frame["t"] in ("ack", "reject") and frame.get("room") == room:
                answers.append(frame)
    return answers


async def test_messages_right_behind_a_join_are_applied_after_it_in_order(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect()
    ids = range(1, MOVES + 1)
    moves = [{"t": "msg", "room": seat.room, "type": "move", "id": i, "data": {"n": i}} for i in ids]

    _send_in_one_write(client, [{"t": "join", "room": seat.room, "seat": seat.seat}, *moves])

    answers = await _acks(client, seat.room, MOVES)
    assert [(a["t"], a["id"]) for a in answers] == [("ack", i) for i in ids]
    joined = [f for f in client.frames if f["t"] == "joined"]
    assert len(joined) == 1
    assert client.frames.index(joined[0]) < client.frames.index(answers[0])
    moved = client.events(seat.room, "moved")
    assert [m["data"]["n"] for m in moved] == list(ids)
    assert [m["seq"] for m in moved] == sorted(m["seq"] for m in moved)


async def test_an_idle_connection_sends_to_its_room_without_its_task(
    server: Server, through_task: list[Any]
) -> None:
    client, seat = await _parked_player(server, through_task)

    await _moves_acked_one_by_one(client, seat.room, 10)
    await client.send({"t": "ping", "id": 7})
    await client.recv_until("pong", id=7)

    assert [e["data"]["n"] for e in client.events(seat.room, "moved")] == list(range(1, 11))
    assert through_task == []


async def test_refusals_on_the_fast_path_are_answered_like_any_other(
    server: Server, through_task: list[Any]
) -> None:
    client, seat = await _parked_player(server, through_task)

    await client.msg("not-my-room", "move", {"n": 1}, id=1)
    await client.msg(seat.room, "move", {"n": "not a number"}, id=2)  # refused by the room
    await client.send({"t": "hello", "v": 1})
    await client.send({"t": "nonsense"})

    rejects: dict[int, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while len(rejects) < 2 or len(errors) < 2:
            frame = await client.recv()
            if frame["t"] == "reject":
                rejects[frame["id"]] = frame
            elif frame["t"] == "error":
                errors.append(frame)
    assert (rejects[1]["room"], rejects[1]["code"]) == ("not-my-room", "not_joined")
    assert (rejects[2]["room"], rejects[2]["code"]) == (seat.room, "invalid_message")
    assert "hello was already received" in errors[0]["message"]
    assert errors[1]["code"] == "bad_frame"
    assert through_task == []


async def test_a_message_behind_a_leave_in_the_same_read_is_refused(server: Server) -> None:
    client, seat = await server.player(create=True)
    move = {"t": "msg", "room": seat.room, "type": "move", "id": 1, "data": {"n": 1}}

    _send_in_one_write(client, [{"t": "leave", "room": seat.room}, move])

    left = await client.recv_until("left")
    (refused,) = await _acks(client, seat.room, 1)
    assert (refused["t"], refused["code"]) == ("reject", "not_joined")
    assert client.frames.index(left) < client.frames.index(refused)
    assert client.events(seat.room, "moved") == []


async def test_a_bug_on_the_fast_path_closes_the_connection_with_1011(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, seat = await _parked_player(server)

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Gateway, "_message_input", broken)
    await client.msg(seat.room, "move", {"n": 1})

    assert await _close_code(client) == 1011


async def test_middleware_that_wraps_receive_sees_every_message(through_task: list[Any]) -> None:
    app = make_app()
    gateway = app.build_gateway()
    seen: list[str] = []

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def wrapped() -> Any:
            message = await receive()
            seen.append(message["type"])
            return message

        await gateway(scope, wrapped if scope["type"] == "websocket" else receive, send)

    def config(host: str, port: int) -> uvicorn.Config:
        return uvicorn_config(middleware, host, port, log_level="warning")

    async with uvicorn_on_free_port(config) as port, serving(f"http://127.0.0.1:{port}", app) as srv:
        client, seat = await srv.player(create=True)
        await _moves_acked_one_by_one(client, seat.room, 5)

    # hello, join and the five moves: every one through the middleware and the task
    assert seen.count("websocket.receive") == 7
    assert len(through_task) == 7


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(server: Server) -> None:
    client, _ = await server.player(create=True)

    await client.ws.send(b'{"t":"msg","room":"\xff"}', text=True)

    assert await _close_code(client) == 1007
