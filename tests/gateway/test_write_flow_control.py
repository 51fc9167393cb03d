"""A client that stops reading: the server's writes are paused by TCP flow control, frames wait in
the connection's bounded queue, and once the client reads again it gets every event once, in order."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator

import pytest
import websockets
from gateway_harness import FRAME_TIMEOUT_S, RawClient, Server, make_app, serving

from roomwire import GatewaySettings
from roomwire.gateway.connection import Connection
from roomwire.protocol.frames import Pong
from roomwire.testing import serve_app

# ~10 KB broadcasts: 8 MB, twice what the server socket's send buffer holds at most (4 MB),
# within the roomy send queue below, so the connection is held back but never dropped.
BLOBS = 800


@pytest.fixture
async def roomy_server() -> AsyncIterator[Server]:
    """The test game with send queues large enough to hold the whole backlog."""
    app = make_app(GatewaySettings(max_queue_frames=100_000, max_queue_bytes=256 * 1024 * 1024))
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def _events(client: RawClient, room: str, count: int) -> list[int]:
    async with asyncio.timeout(30):
        while len(client.events(room, "blob")) < count:
            await client.recv()
    return [e["seq"] for e in client.events(room, "blob")]


async def _stalling_client(server: Server) -> RawClient:
    """A client with a tiny receive buffer whose library stops reading after 4 queued messages."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: it sets the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await websockets.connect(
        f"ws://{host}:{port}/ws",
        sock=sock,
        subprotocols=["roomwire.v1.json"],  # type: ignore[list-item]  # websockets' Subprotocol
        max_size=2**24,
        max_queue=4,
        open_timeout=FRAME_TIMEOUT_S,
    )
    client = RawClient(ws, "json")
    server.clients.append(client)
    await client.hello()
    return client


def _connection_of(player: str) -> Connection:
    # type(), not isinstance(): a dead weakref proxy among the objects raises on isinstance().
    found = [
        c
        for c in gc.get_objects()
        if type(c) is Connection and any(m.player == player for m in c.rooms.values())
    ]
    assert len(found) == 1
    return found[0]


async def test_a_stalled_reader_gets_every_event_in_order_after_flow_control(roomy_server: Server) -> None:
    server = roomy_server
    sender, seat = await server.player(create=True)
    stalled = await _stalling_client(server)
    stalled_seat = await server.seat(room=seat.room)
    assert (await stalled.join(stalled_seat))["t"] == "joined"

    async def send(first_id: int) -> None:
        # One at a time, each acked before the next: one event per commit, so each reaches the
        # stalled client as the commit's only frame for it (the direct-write path), not in a batch.
        for msg_id in range(first_id, first_id + BLOBS):
            await sender.msg(seat.room, "blob", id=msg_id)
            await sender.recv_until("ack", id=msg_id)

    await send(1)
    # The stalled client's socket is full: its frames wait in the server's queue, behind flow
    # control, with the writer task a connection gets only then.
    held_back = _connection_of(stalled_seat.player)
    assert held_back.writer is not None and held_back._queue

    more = asyncio.create_task(send(BLOBS + 1))  # new events keep coming while the backlog drains
    got = await _events(stalled, seat.room, 2 * BLOBS)
    await more
    sent = await _events(sender, seat.room, 2 * BLOBS)

    assert got == sent  # every event once, in the room's order
    assert got == list(range(got[0], got[0] + 2 * BLOBS))


async def test_a_direct_write_waits_behind_frames_queued_before_it(server: Server) -> None:
    client, seat = await server.player(create=True)
    conn = _connection_of(seat.player)
    assert conn.direct is not None and conn.batch is not None  # the direct-write path is the one under test

    def pong(n: int) -> bytes | str:
        return conn.wire_for(conn.codec.encode(Pong(id=n)))

    # One commit queues two frames for the connection (flushed when the batch closes); the next
    # commit, in the same turn, has one frame, which write_now would write at once on its own.
    with conn.batch:
        conn.send_wire(pong(1))
        conn.send_wire(pong(2))
        conn.write_now(pong(3))
        assert conn._queue  # still held: nothing was written past the queued frames

    assert [(await client.recv_until("pong"))["id"] for _ in range(3)] == [1, 2, 3]
