"""Promise 7 at the HTTP edge, over real sockets: body size and time, head size and time, nesting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import Server, make_app, serving
from starlette.responses import StreamingResponse

from roomwire import GatewaySettings
from roomwire.testing import serve_app

MiB = 1024 * 1024


@pytest.fixture
async def edgy() -> AsyncIterator[Server]:
    """The test game with short HTTP timeouts, so that the slow clients below are cut off soon."""
    app = make_app(GatewaySettings(head_timeout_s=1.0, body_timeout_s=1.0, rooms_per_player_per_min=3))

    @app.route("/ticks")
    async def ticks(request: Any) -> StreamingResponse:
        async def four_ticks() -> AsyncIterator[str]:
            for _ in range(4):
                await asyncio.sleep(0.5)  # the stream's own pace: 2 s in all
                yield "tick\n"

        return StreamingResponse(four_ticks())

    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def _open(srv: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = srv.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response (Content-Length framed)."""
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


async def _closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (within 10 s)."""
    async with asyncio.timeout(10):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass
    return True


async def test_a_body_over_the_limit_is_refused_by_its_length_without_being_read(server: Server) -> None:
    reader, writer = await _open(server)
    size = 10 * MiB
    writer.write(
        b"POST /auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % size
    )
    writer.write(b"{" + b" " * 65536)  # the body starts; the server must not wait for the rest
    status, headers, body = await _response(reader)
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "frame_too_large"
    assert await _closed(reader)
    writer.close()


async def test_a_chunked_body_is_cut_off_at_the_limit(server: Server) -> None:
    reader, writer = await _open(server)
    writer.write(b"POST /auth/guest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * 16384
    for _ in range(5):  # 80 KiB, over the default 64 KiB, and never a last chunk
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    status, _, body = await _response(reader)
    assert status == 413 and json.loads(body)["error"]["code"] == "frame_too_large"
    writer.close()


async def test_the_body_limit_covers_the_apps_own_routes(server: Server) -> None:
    response = await server.http.post("/stats", content=b"x" * (65 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "frame_too_large"


async def test_a_body_sent_too_slowly_is_answered_408(edgy: Server) -> None:
    reader, writer = await _open(edgy)
    writer.write(b"POST /auth/guest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    status, headers, body = await _response(reader)  # body_timeout_s is 1 s here
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "bad_frame"
    writer.close()


async def test_room_meta_over_its_limit_is_refused(server: Server) -> None:
    headers = {"authorization": f"Bearer {await server.guest()}"}
    big = {"type": "arena", "meta": {"bio": "x" * 5000}}
    response = await server.http.post("/rooms", json=big, headers=headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "frame_too_large"
    merged = {"type": "arena", "filters": {"a": "x" * 3000}, "meta": {"b": "y" * 3000}}
    response = await server.http.post("/rooms/join-or-create", json=merged, headers=headers)
    assert response.status_code == 413
    fits = {"type": "arena", "meta": {"bio": "x" * 3000}}
    ok = await server.http.post("/rooms", json=fits, headers=headers)
    assert ok.status_code == 201


async def test_a_deeply_nested_body_is_a_400_with_the_error_body(server: Server) -> None:
    headers = {"authorization": f"Bearer {await server.guest()}"}
    # 40 KB, under the body limit; `options` is any JSON object, so the parser goes all the way down.
    nested = b'{"type": "arena", "options": {"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}"
    response = await server.http.post("/rooms", content=nested, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_frame"
    assert "nested too deeply" in response.json()["error"]["message"]


async def test_a_deeply_nested_message_is_a_bad_frame_and_the_room_goes_on(server: Server) -> None:
    alice, seat = await server.player(create=True)
    data = "[" * 30_000 + "]" * 30_000
    await alice.ws.send(f'{{"t":"msg","room":"{seat.room}","type":"move","id":1,"data":{data}}}')
    error = await alice.recv_until("error")
    assert error["code"] == "bad_frame" and "nested" in error["message"]
    msg_id = await alice.msg(seat.room, "move", {"n": 1})
    await alice.recv_until("ack", id=msg_id)


async def test_rooms_created_per_player_are_limited_with_retry_after(edgy: Server) -> None:
    headers = {"authorization": f"Bearer {await edgy.guest()}"}
    for _ in range(3):
        created = await edgy.http.post("/rooms", json={"type": "arena"}, headers=headers)
        assert created.status_code == 201
    refused = await edgy.http.post("/rooms", json={"type": "arena"}, headers=headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # join-or-create that has to create counts too; one that finds a seat does not.
    private = {"type": "arena", "filters": {"map": "none-yet"}}
    refused = await edgy.http.post("/rooms/join-or-create", json=private, headers=headers)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    other = {"authorization": f"Bearer {await edgy.guest()}"}
    assert (await edgy.http.post("/rooms", json={"type": "arena"}, headers=other)).status_code == 201


async def test_sockets_trickling_the_upgrade_request_are_closed_after_the_head_timeout(edgy: Server) -> None:
    request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    socks = [await _open(edgy) for _ in range(50)]

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        answer = asyncio.create_task(reader.read())  # everything until the server closes
        # One byte every 0.2 s: the head would take 15 s; head_timeout_s is 1 s here.
        for byte in request:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)  # the slow client's own pace
        async with asyncio.timeout(10):
            got = await answer
        writer.close()
        return got

    async with asyncio.timeout(20):  # closed after ~1 s, long before the 15 s the heads would take
        answers = await asyncio.gather(*(trickle(r, w) for r, w in socks))
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]


async def test_a_silent_socket_is_closed_after_the_head_timeout(edgy: Server) -> None:
    reader, writer = await _open(edgy)
    status, _, body = await _response(reader)
    assert status == 408 and "request head" in json.loads(body)["error"]["message"]
    assert await _closed(reader)
    writer.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes (a reset after its answer ends it too)."""
    got = b""
    try:
        while chunk := await reader.read(65536):
            got += chunk
    except ConnectionError:
        pass
    return got


async def test_a_head_over_the_limit_is_refused_431(server: Server) -> None:
    reader, writer = await _open(server)
    answer = asyncio.create_task(_read_all(reader))
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Big: ")
    sent = 0
    try:
        while sent < 16 * MiB and not answer.done():
            writer.write(b"a" * 16384)
            await writer.drain()
            sent += 16384
    except ConnectionError:
        pass  # closed by the server while we were still sending: what this test wants
    async with asyncio.timeout(10):
        got = await answer
    assert sent < 4 * MiB  # refused long before the 16 MiB were sent
    assert got.startswith(b"HTTP/1.1 431"), got[:100]
    assert b'"code":"bad_frame"' in got.replace(b" ", b"")
    writer.close()


async def test_a_head_over_the_limit_in_one_piece_is_refused_431(server: Server) -> None:
    reader, writer = await _open(server)
    writer.write(b"GET /rooms HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    status, _, _ = await _response(reader)
    assert status == 431
    writer.close()


async def test_keep_alive_requests_and_normal_bodies_still_work(edgy: Server) -> None:
    for _ in range(3):  # one kept-alive connection; each request within its head deadline
        response = await edgy.http.post("/auth/guest", json={"name": "ann"})
        assert response.status_code == 200
        await asyncio.sleep(0.6)  # the pause between requests is not counted against the head
    client = await edgy.connect()  # the WebSocket upgrade passes
    await client.send({"t": "ping", "id": 1})
    assert (await client.recv_until("pong"))["id"] == 1


async def test_a_streaming_response_outlives_the_body_timeout(edgy: Server) -> None:
    # Starlette's StreamingResponse waits in receive() for the disconnect while it streams: the
    # body deadline (1 s here) must not cut it off once the (empty) body has arrived.
    async with edgy.http.stream("GET", "/ticks") as response:
        assert response.status_code == 200
        chunks = [chunk async for chunk in response.aiter_text()]
    assert "".join(chunks) == "tick\n" * 4
