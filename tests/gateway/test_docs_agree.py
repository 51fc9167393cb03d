"""What docs/protocol.md and the README promise about joins, the handshake, auth and lobby data,
checked over real HTTP and WebSocket connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import Server, serving
from starlette.requests import Request

from roomwire import App
from roomwire.gateway.auth import Identity
from roomwire.testing import serve_app


async def test_a_join_without_a_seat_is_unauthorized_for_its_room(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect()
    await client.send({"t": "join", "room": seat.room})
    error = await client.recv_until("error")
    assert error["code"] == "unauthorized" and error["room"] == seat.room
    assert (await client.join(seat))["t"] == "joined"  # the connection stays usable


async def test_a_message_before_hello_is_answered_not_ready(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect(hello=False)
    await client.msg(seat.room, "move", {"n": 1}, id=7)
    reject = await client.recv_until("reject")
    assert (reject["code"], reject["room"], reject["id"]) == ("not_ready", seat.room, 7)
    await client.msg(seat.room, "move", {"n": 1}, id=None)
    error = await client.recv_until("error")
    assert (error["code"], error["room"]) == ("not_ready", seat.room)


def _app_with_own_auth() -> App:
    app = App("own-auth", guests=False)
    room_type = app.room("duel", max_players=2)

    @app.authenticate
    async def by_api_key(request: Request) -> Identity | None:
        key = request.headers.get("x-api-key")
        if key is None:
            return None
        return Identity(f"user-{key}", {"plan": "gold"})

    @room_type.on_join
    def join(room: Any, player: Any) -> None:
        room.broadcast("hello", id=player.id, plan=player.claims.get("plan"))

    @app.route("/kv/{key}", methods=["GET", "PUT", "DELETE"])
    async def kv(request: Request) -> Any:
        key = request.path_params["key"]
        if request.method == "PUT":
            body = await request.json()
            await app.lobby.set(key, body["value"], ttl_s=body.get("ttl_s"))
        elif request.method == "DELETE":
            await app.lobby.delete(key)
        return {"value": await app.lobby.get(key)}

    return app


@pytest.fixture
async def own_auth() -> AsyncIterator[Server]:
    app = _app_with_own_auth()
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv


async def test_app_authenticate_identifies_lobby_callers_and_their_seats(own_auth: Server) -> None:
    http = own_auth.http
    refused = await http.post("/rooms", json={"type": "duel"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert (await http.post("/auth/guest")).status_code in (403, 404)  # guests=False
    created = await http.post("/rooms", json={"type": "duel"}, headers={"x-api-key": "ada"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["player"] == "user-ada"
    client = await own_auth.connect()
    joined = await client.join(body["seat"], room=body["room"])
    assert joined["t"] == "joined" and joined["player"] == "user-ada"
    hello = await client.recv_until("event", type="hello")
    assert hello["data"] == {"id": "user-ada", "plan": "gold"}  # claims reach the room


async def test_lobby_key_value_data_sets_gets_expires_and_deletes(own_auth: Server) -> None:
    http = own_auth.http
    put = await http.put("/kv/motd", json={"value": {"text": "hi", "n": [1, 2]}})
    assert put.json() == {"value": {"text": "hi", "n": [1, 2]}}
    assert (await http.get("/kv/motd")).json() == {"value": {"text": "hi", "n": [1, 2]}}
    assert (await http.delete("/kv/motd")).json() == {"value": None}
    await http.put("/kv/flash", json={"value": 1, "ttl_s": 0.2})
    assert (await http.get("/kv/flash")).json() == {"value": 1}
    async with asyncio.timeout(10):
        # Polling an expiry: there is no event to wait on over HTTP.
        while (await http.get("/kv/flash")).json()["value"] is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
