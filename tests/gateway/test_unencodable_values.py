"""Values a codec cannot carry never reach a commit: refused at decode, in the lobby, or with their step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import websockets
from gateway_harness import Server, serving

from roomwire import App
from roomwire.backends.embedded import EmbeddedBackend
from roomwire.backends.records import OutEvent, Published
from roomwire.gateway.auth import TokenSigner
from roomwire.testing import serve_app

WIDE = 2**64  # MessagePack carries -2^63 ... 2^64-1


def echo_app() -> App:
    """A room type that broadcasts what it is sent, and one handler that makes a too-wide integer."""
    app = App("unencodable-tests")
    room_type = app.room("echo", max_players=4, rate_limit=None, idle_timeout_s=60)

    @room_type.message("say")
    def say(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("said", p=player.id, data=msg)

    @room_type.message("overflow")
    def overflow(room: Any, player: Any, msg: Any) -> None:
        room.state["touched"] = True
        room.broadcast("huge", n=2**64)  # the step must fail, not the commit or the fan-out

    @room_type.message("arm")
    def arm(room: Any, player: Any, msg: Any) -> None:
        items = room.state.setdefault("items", [])
        room.broadcast("items", items=items)  # shares the list with the state: game code may
        room.broadcast("after", n=1)
        room.after(0.0, poison)  # due at once: runs in the same batch, before the commit

    return app


def poison(room: Any) -> None:
    """Timer: changes a list an emitted, uncommitted event shared (to a value only MessagePack carries)."""
    room.state["items"].append(msgspec.msgpack.Ext(1, b"x"))


@pytest.fixture(params=["memory", "sqlite"])
async def server(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Server]:
    app = echo_app()
    path = None if request.param == "memory" else str(tmp_path / "rooms.db")
    backend = EmbeddedBackend(path, "rw") if path else None
    async with serve_app(app, backend) as base, serving(base, app) as srv:
        yield srv


async def _roundtrip_works(server: Server, room: str, a: Any, b: Any) -> None:
    """Both players' messages are applied and seen by the other; a new player can still join."""
    a_id = await a.msg(room, "say", {"ok": 1})
    b_id = await b.msg(room, "say", {"ok": 2})
    await a.recv_until("ack", id=a_id)
    await b.recv_until("ack", id=b_id)
    assert [e["data"]["data"] for e in a.events(room, "said")][-2:] == [{"ok": 1}, {"ok": 2}]
    late, _ = await server.player(await server.seat("echo", room=room))
    await late.msg(room, "say", "hi")
    await late.recv_until("ack", id=1)


async def test_a_json_integer_of_2_64_is_a_bad_frame_and_the_room_goes_on(server: Server) -> None:
    a, seat = await server.player(create=True, type="echo")
    b, _ = await server.player(await server.seat("echo", room=seat.room))
    room = seat.room
    for frame in (
        {"t": "msg", "room": room, "type": "say", "data": {"n": WIDE}, "id": 1},
        {"t": "msg", "room": room, "type": "say", "data": [-(2**63) - 1], "id": 1},
        {"t": "msg", "room": room, "type": "say", "data": 1, "id": WIDE},
        {"t": "msg", "room": room, "type": "say", "data": 1, "id": 2**63},
        {"t": "ping", "id": 2**63},
    ):
        await a.send(frame)
        error = await a.recv_until("error")
        assert error["code"] == "bad_frame", error
    await _roundtrip_works(server, room, a, b)


async def test_event_data_no_codec_can_encode_fails_its_step_only(server: Server) -> None:
    a, seat = await server.player(create=True, type="echo")
    b, _ = await server.player(await server.seat("echo", room=seat.room))
    room = seat.room
    await b.msg(room, "say", "before")
    bad = await a.msg(room, "overflow")
    reject = await a.recv_until("reject", id=bad)
    assert reject["code"] == "internal" and reject.get("ref"), reject
    await b.recv_until("ack", id=1)
    await _roundtrip_works(server, room, a, b)
    assert not [f for f in a.frames + b.frames if f.get("type") == "huge"]


async def test_msgpack_ext_cannot_cut_json_players_off(server: Server) -> None:
    packer, seat = await server.player(create=True, type="echo", codec="msgpack")
    reader, _ = await server.player(await server.seat("echo", room=seat.room))  # JSON
    room = seat.room
    for data in (msgspec.msgpack.Ext(7, b"x"), {1: "int key"}, b"raw bytes", float("nan")):
        await packer.send({"t": "msg", "room": room, "type": "say", "data": {"v": data}, "id": 1})
        error = await packer.recv_until("error")
        assert error["code"] == "bad_frame", error
    await _roundtrip_works(server, room, packer, reader)
    said = [e["data"]["data"] for e in reader.events(room, "said")]
    assert said[:2] == [{"ok": 1}, {"ok": 2}], said


async def test_lobby_refuses_options_and_meta_no_codec_can_carry(server: Server) -> None:
    headers = {"authorization": f"Bearer {await server.guest()}"}
    for body in (
        {"type": "echo", "options": {"n": WIDE}},
        {"type": "echo", "meta": {"n": [WIDE]}},
        {"type": "echo", "meta": {"n": -(2**63) - 1}},
    ):
        response = await server.http.post("/rooms", json=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_frame"
    response = await server.http.post(
        "/rooms/join-or-create", json={"type": "echo", "filters": {"n": WIDE}}, headers=headers
    )
    assert response.status_code == 400, response.text
    listed = await server.http.get("/rooms", headers=headers)
    assert listed.status_code == 200 and listed.json()["rooms"] == [], listed.text


async def test_an_event_keeps_the_data_it_was_emitted_with(server: Server) -> None:
    """Game code shares a list between its state and an event, then changes it in a later step of
    the same batch: the event is what it was when emitted, for live delivery and for replay."""
    reader, seat = await server.player(create=True, type="echo")  # JSON, first in the room
    packer, _ = await server.player(await server.seat("echo", room=seat.room), codec="msgpack")
    room = seat.room
    armed = await packer.msg(room, "arm")
    await packer.recv_until("ack", id=armed)
    got = [(e["type"], e["data"]) for e in packer.events(room)]
    assert got == [("items", {"items": []}), ("after", {"n": 1})]
    await reader.recv_until("event", type="after")
    assert reader.events(room, "items")[0]["data"] == {"items": []}
    late = await server.connect()
    rejoin = [f for f in reader.frames if f["t"] == "joined"][-1]["rejoin"]
    await late.send({"t": "join", "room": room, "seat": rejoin, "since": 0})
    await late.recv_until("event", type="after")
    assert late.events(room, "items")[0]["data"] == {"items": []}


async def test_an_event_one_codec_cannot_encode_closes_only_those_connections(server: Server) -> None:
    """Defence in depth behind the step check: a commit holding an event the JSON codec cannot
    encode (published straight into the gateway's fan-out) still reaches MessagePack clients."""
    reader, seat = await server.player(create=True, type="echo")  # JSON, first in the room
    packer, _ = await server.player(await server.seat("echo", room=seat.room), codec="msgpack")
    room = seat.room
    said = await packer.msg(room, "say", "hi")
    await packer.recv_until("ack", id=said)
    seq = packer.events(room)[-1]["seq"]
    gateway = server.app.gateway
    assert gateway is not None
    fanout = gateway._fanouts[room]  # the gateway's own fan-out of the room, as a commit reaches it
    poisoned = OutEvent(seq + 1, "poison", {"v": msgspec.msgpack.Ext(1, b"x")})
    fanout.on_publish(Published(room, (poisoned, OutEvent(seq + 2, "fine", 1))))
    fine = await packer.recv_until("event", type="fine")
    assert fine["seq"] == seq + 2 and packer.events(room, "poison")
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await reader.recv()
    assert reader.ws.close_code == 1011, reader.ws.close_code
    assert not reader.events(room, "fine")


@pytest.mark.parametrize("claims", [{"n": WIDE}, {"at": b"raw"}, {"x": float("nan")}, {1: "int key"}])
def test_claims_no_codec_can_carry_are_refused_when_issued(claims: dict[Any, Any]) -> None:
    signer = TokenSigner("a-secret-of-at-least-32-characters!!")
    with pytest.raises(ValueError, match="claims"):
        signer.issue_token("p1", claims)
    with pytest.raises(ValueError, match="claims"):
        signer.issue_seat("room-1", "p1", claims, 60)
    assert signer.issue_token("p1", {"n": 2**64 - 1, "name": "ann"})
