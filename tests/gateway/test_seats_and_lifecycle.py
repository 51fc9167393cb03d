"""Seats, identity and the end of a room, over real WebSockets and the lobby."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from gateway_harness import FRAME_TIMEOUT_S, Seat, Server, make_app, serving

from roomwire import GatewaySettings, Player, Room
from roomwire.backends.base import Backend
from roomwire.backends.records import DisconnectInput
from roomwire.runtime.snapshot import PlayerRecord, decode_snapshot
from roomwire.testing import serve_app


async def test_join_without_a_valid_seat_is_refused(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect()
    assert (await client.join("not-a-token", room=seat.room))["code"] == "unauthorized"
    # An identity token is not a seat.
    assert (await client.join(seat.token, room=seat.room))["code"] == "unauthorized"
    # A seat whose player id was changed by the client fails its signature.
    head, payload, sig = seat.seat.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert (await client.join(f"{head}.{forged}.{sig}", room=seat.room))["code"] == "unauthorized"
    assert (await client.join(seat))["t"] == "joined"


async def test_seat_for_another_room_is_forbidden(server: Server) -> None:
    mine = await server.seat(create=True)
    theirs = await server.seat(create=True)
    client = await server.connect()
    assert (await client.join(mine.seat, room=theirs.room))["code"] == "forbidden"


async def test_player_id_comes_from_the_seat(server: Server) -> None:
    seat = await server.seat(create=True)
    client = await server.connect()
    joined = await client.join(seat)
    assert joined["player"] == seat.player


async def test_room_refuses_players_past_max_players(server: Server) -> None:
    first = await server.seat(create=True)
    for _ in range(2):
        await server.seat(room=first.room)
    token = await server.guest()
    response = await server.http.post(
        f"/rooms/{first.room}/seats", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "room_full"
    # join-or-create puts the fourth player into a new room instead.
    fourth = await server.seat(token=token)
    assert fourth.room != first.room


async def test_join_hook_can_refuse_with_a_reason(server: Server) -> None:
    seat = await server.seat(create=True)
    banned = server.app.issue_token("mallory", {"banned": True})
    their = await server.seat(room=seat.room, token=banned)
    client = await server.connect()
    refused = await client.join(their)
    assert refused["code"] == "forbidden" and "banned" in refused["message"]


async def test_lobby_needs_a_token(server: Server) -> None:
    response = await server.http.post("/rooms/join-or-create", json={"type": "arena"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    bad = await server.http.post("/rooms", json={"type": "arena"}, headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401
    token = await server.guest()
    unknown = await server.http.post(
        "/rooms", json={"type": "nope"}, headers={"authorization": f"Bearer {token}"}
    )
    assert unknown.status_code == 404 and "arena" in unknown.json()["error"]["message"]
    malformed = await server.http.post("/rooms", content=b"{", headers={"authorization": f"Bearer {token}"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "bad_frame"


async def test_room_end_tells_clients_and_removes_room_and_history(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob_seat = await server.seat(room=seat.room)
    bob = await server.connect()
    joined = await bob.join(bob_seat)
    headers = {"authorization": f"Bearer {seat.token}"}
    listed = (await server.http.get("/rooms", params={"type": "arena"}, headers=headers)).json()["rooms"]
    assert seat.room in [r["id"] for r in listed]

    await alice.msg(seat.room, "end")
    for client in (alice, bob):
        left = await client.recv_until("left", room=seat.room)
        assert left["reason"] == "ended" and left["detail"] == "game over"

    listed = (await server.http.get("/rooms", params={"type": "arena"}, headers=headers)).json()["rooms"]
    assert seat.room not in [r["id"] for r in listed]
    gone = await server.http.post(f"/rooms/{seat.room}/seats", headers=headers)
    assert gone.status_code == 404
    again = await server.connect()
    refused = await again.join(joined["rejoin"], room=seat.room, since=0)
    assert refused["code"] == "room_not_found"


async def test_a_message_to_a_room_that_is_gone_while_still_joined_is_rejected_room_closed(
    server: Server,
) -> None:
    alice, seat = await server.player(create=True)
    gateway = server.app.gateway
    assert gateway is not None
    # The room is removed without an `ended` commit (as when it ends on another process and the
    # news has not arrived yet): the gateway still counts alice as a member when she sends.
    await gateway.backend.delete_room(seat.room)

    msg_id = await alice.msg(seat.room, "move", {"n": 1})

    reject = await alice.recv_until("reject", id=msg_id)
    assert reject["room"] == seat.room and reject["code"] == "room_closed"


async def test_leave_tells_the_client_and_the_room(server: Server) -> None:
    alice, seat = await server.player(create=True)
    bob, _ = await server.player(await server.seat(room=seat.room))
    await bob.send({"t": "leave", "room": seat.room})
    assert (await bob.recv_until("left", room=seat.room))["reason"] == "left"
    msg_id = await bob.msg(seat.room, "move", {"n": 1})
    assert (await bob.recv_until("reject", id=msg_id))["code"] == "not_joined"
    await alice.msg(seat.room, "move", {"n": 1})
    assert (await alice.recv_until("event", type="moved"))["data"]["total"] == 1


async def test_same_player_on_a_second_connection_replaces_the_first(server: Server) -> None:
    alice, seat = await server.player(create=True)
    second = await server.connect()
    again = await server.seat(room=seat.room, token=seat.token)
    assert (await second.join(again))["t"] == "joined"
    assert (await alice.recv_until("left", room=seat.room))["reason"] == "replaced"
    await second.msg(seat.room, "move", {"n": 4})
    assert (await second.recv_until("event", type="moved"))["data"]["total"] == 4


async def test_lobby_routes_serve_json_and_see_rooms_and_data(server: Server) -> None:
    await server.seat(create=True)
    await server.seat(create=True)
    for _ in range(2):
        assert (await server.http.post("/stats")).status_code == 200
    assert (await server.http.get("/stats")).json() == {"rooms": 2, "visits": 2}
    hello = await server.http.get("/hello/ada")
    assert hello.status_code == 200 and hello.text == "hello ada"
    assert (await server.http.delete("/stats")).status_code == 405


async def test_a_join_that_times_out_leaves_no_player_connected_without_a_connection() -> None:
    app = make_app(GatewaySettings(join_timeout_s=0.3))

    @app.room_types["arena"].message("nap")
    async def nap(room: Room, player: Player, msg: Any) -> None:
        await asyncio.sleep(float(msg))  # keeps the room busy: a join behind it waits

    async with serve_app(app) as url, serving(url, app) as server:
        seat = await server.seat(create=True)
        first = await server.connect()
        joined = await first.join(seat)
        await first.msg(seat.room, "nap", 1.0)
        second = await server.connect()
        refused = await second.join(joined["rejoin"], room=seat.room)
        assert refused["t"] == "error"  # the join timed out; the client gives up on it
        await second.aclose()

        # Once the room gets to it, the join replaces the first connection (the room's view),
        # and the disconnect the gateway appended for the timed-out join takes the player out.
        assert (await first.recv_until("left", room=seat.room))["reason"] == "replaced"
        gateway = app.gateway
        assert gateway is not None
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while (await _record(gateway.backend, seat)).connected:  # noqa: ASYNC110 - no event for it
                await asyncio.sleep(0.02)


async def _record(backend: Backend, seat: Seat) -> PlayerRecord:
    loaded = await backend.load(seat.room)
    assert loaded is not None
    return decode_snapshot(loaded.snapshot).players[seat.player]


async def test_a_gateway_whose_presence_lapsed_closes_its_clients_with_1012() -> None:
    app = make_app(GatewaySettings(presence_ttl_s=0.5))  # closes after 0.75 s between renewals
    async with serve_app(app) as url, serving(url, app) as server:
        client, _ = await server.player(create=True)
        # The whole process stalls for 2.4 TTLs (as under SIGSTOP or a paused VM): rooms may have
        # counted this gateway as gone meanwhile, so its clients must resume to be counted again.
        time.sleep(1.2)  # noqa: ASYNC251 - deliberate: the stall under test, not a wait
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await client.ws.wait_closed()
        assert client.ws.close_code == 1012
        again, _ = await server.player(create=True)  # the gateway serves on
        assert not again.ws.close_code


async def test_a_member_the_room_removed_while_it_was_still_connected_is_told() -> None:
    app = make_app()
    app.room("quick", reconnect_grace_s=0.2)
    async with serve_app(app) as url, serving(url, app) as server:
        seat = await server.seat("quick", create=True)
        client = await server.connect()
        assert (await client.join(seat))["t"] == "joined"
        await server.player(await server.seat(room=seat.room))  # someone stays: the room goes on
        gateway = app.gateway
        assert gateway is not None
        # What a worker appends for a gateway it counted as gone (its presence had lapsed) while
        # the connection is in fact still here: after the grace the room removes the player.
        session = (await _record(gateway.backend, seat)).session
        await gateway.backend.append_input(seat.room, DisconnectInput(seat.player, time.time(), session))

        left = await client.recv_until("left", room=seat.room)
        assert (left["reason"], left["detail"]) == ("removed", "disconnected")
