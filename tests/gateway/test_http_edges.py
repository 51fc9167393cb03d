"""Promise 7 at the HTTP edge, over real sockets: body size and time, head size and time, nesting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from gateway_harness import Server, make_app, serving

from roomwire import GatewaySettings
from roomwire.testing import serve_app

MiB = 1024 * 1024


@pytest.fixture
async def edgy() -> AsyncIterator[Server]:
    """The test game with short HTTP timeouts, so that the slow clients below are cut off soon."""
    app = make_app(GatewaySettings(head_timeout_s=1.0, body_timeout_s=1.0, rooms_per_player_per_min=3))
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
