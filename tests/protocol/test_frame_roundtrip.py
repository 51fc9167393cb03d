"""Every frame kind round-trips through both codecs; defaults are omitted and unknown fields ignored."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomwire.protocol import (
    JSON,
    MSGPACK,
    SUBPROTOCOLS,
    Ack,
    ClientFrame,
    Codec,
    Error,
    Event,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    Msg,
    Ping,
    Pong,
    Reject,
    ServerFrame,
    Welcome,
    codec_for,
)

# Generous limit: these tests are about shape, not size (size has its own tests).
_BIG = 64 * 1024 * 1024
CODECS = [JSON, MSGPACK]

# Integers both codecs carry exactly (MessagePack and msgspec's JSON both handle int64).
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
positive_ids = st.integers(min_value=1, max_value=2**63 - 1)
seqs = st.integers(min_value=0, max_value=2**63 - 1)
names = st.text(max_size=40)
opt_names = st.none() | names

# User data: what JSON can carry exactly (no NaN/inf: JSON has no spelling for them).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

CLIENT_FRAMES: dict[type[Any], st.SearchStrategy[Any]] = {
    Hello: st.builds(Hello, v=ints, client=opt_names),
    Join: st.builds(Join, room=names, seat=names, since=st.none() | seqs),
    Leave: st.builds(Leave, room=names),
    Msg: st.builds(Msg, room=names, type=names, data=json_values, id=st.none() | positive_ids),
    Ping: st.builds(Ping, id=ints),
}
SERVER_FRAMES: dict[type[Any], st.SearchStrategy[Any]] = {
    Welcome: st.builds(
        Welcome,
        v=ints,
        codec=st.sampled_from(["json", "msgpack"]),
        heartbeat_s=st.floats(min_value=0.001, max_value=3600),
        max_frame_bytes=st.integers(min_value=1, max_value=2**31),
        server=names,
    ),
    Joined: st.builds(
        Joined, room=names, player=names, seq=seqs, last_id=seqs, rejoin=names, resumed=st.booleans()
    ),
    Event: st.builds(Event, room=names, seq=seqs, type=names, data=json_values),
    Ack: st.builds(Ack, room=names, id=positive_ids, dup=st.booleans()),
    Reject: st.builds(Reject, room=names, id=positive_ids, code=names, message=names, ref=opt_names),
    Left: st.builds(Left, room=names, reason=names, detail=opt_names),
    Error: st.builds(Error, code=names, message=names, room=opt_names, ref=opt_names),
    Pong: st.builds(Pong, id=ints),
}

client_frames = st.one_of(*CLIENT_FRAMES.values())
server_frames = st.one_of(*SERVER_FRAMES.values())
codecs = st.sampled_from(CODECS)


def _as_map(codec: Codec, wire: bytes) -> dict[str, Any]:
    """Decode wire bytes into a plain map, as a client in another language would see them."""
    value = msgspec.msgpack.decode(wire) if codec.is_binary else msgspec.json.decode(wire)
    assert isinstance(value, dict)
    return value


def _to_wire(codec: Codec, value: dict[str, Any]) -> bytes:
    return msgspec.msgpack.encode(value) if codec.is_binary else msgspec.json.encode(value)


def test_strategies_cover_every_frame_kind() -> None:
    assert set(CLIENT_FRAMES) == set(typing.get_args(ClientFrame))
    assert set(SERVER_FRAMES) == set(typing.get_args(ServerFrame))


@given(frame=client_frames, codec=codecs)
def test_client_frames_round_trip(frame: Any, codec: Codec) -> None:
    assert codec.decode_client(codec.encode(frame), max_bytes=_BIG) == frame


@given(frame=server_frames, codec=codecs)
def test_server_frames_round_trip(frame: Any, codec: Codec) -> None:
    assert codec.decode_server(codec.encode(frame), max_bytes=_BIG) == frame


@given(frame=client_frames | server_frames, codec=codecs)
def test_every_frame_is_a_map_tagged_by_t(frame: Any, codec: Codec) -> None:
    assert _as_map(codec, codec.encode(frame))["t"] == frame.__struct_config__.tag


@given(
    frame=client_frames,
    codec=codecs,
    extra=st.dictionaries(st.text(min_size=1, max_size=12).map(lambda k: "x_" + k), json_values, max_size=4),
)
def test_unknown_fields_in_client_frames_are_ignored(frame: Any, codec: Codec, extra: dict[str, Any]) -> None:
    wire = _to_wire(codec, {**_as_map(codec, codec.encode(frame)), **extra})
    assert codec.decode_client(wire, max_bytes=_BIG) == frame


@given(
    frame=server_frames,
    codec=codecs,
    extra=st.dictionaries(st.text(min_size=1, max_size=12).map(lambda k: "x_" + k), json_values, max_size=4),
)
def test_unknown_fields_in_server_frames_are_ignored(frame: Any, codec: Codec, extra: dict[str, Any]) -> None:
    wire = _to_wire(codec, {**_as_map(codec, codec.encode(frame)), **extra})
    assert codec.decode_server(wire, max_bytes=_BIG) == frame


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_fields_with_default_values_are_omitted(codec: Codec) -> None:
    assert _as_map(codec, codec.encode(Msg(room="r1", type="move"))) == {
        "t": "msg",
        "room": "r1",
        "type": "move",
    }
    assert _as_map(codec, codec.encode(Ack(room="r1", id=3))) == {"t": "ack", "room": "r1", "id": 3}
    assert _as_map(codec, codec.encode(Hello(v=1))) == {"t": "hello"}  # v=1 is the default


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_omitted_optional_fields_decode_to_their_defaults(codec: Codec) -> None:
    assert codec.decode_client(_to_wire(codec, {"t": "hello"})) == Hello(v=1, client=None)
    assert codec.decode_client(_to_wire(codec, {"t": "ping"})) == Ping(id=0)
    assert codec.decode_client(_to_wire(codec, {"t": "join", "room": "r", "seat": "s"})) == Join(
        room="r", seat="s", since=None
    )
    joined = {"t": "joined", "room": "r", "player": "p", "seq": 0, "last_id": 0, "rejoin": "x"}
    assert codec.decode_server(_to_wire(codec, joined)) == Joined(
        room="r", player="p", seq=0, last_id=0, rejoin="x", resumed=False
    )


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_explicit_null_is_the_same_as_omitted(codec: Codec) -> None:
    wire = _to_wire(codec, {"t": "msg", "room": "r", "type": "move", "data": None, "id": None})
    assert codec.decode_client(wire) == Msg(room="r", type="move")


def test_json_frames_are_utf8_text_and_msgpack_frames_are_binary() -> None:
    assert JSON.is_binary is False
    assert MSGPACK.is_binary is True
    JSON.encode(Msg(room="r", type="say", data="héllo ✓")).decode("utf-8")
    assert JSON.decode_client('{"t":"ping","id":7}') == Ping(id=7)  # text frames arrive as str


def test_subprotocol_names_select_the_codecs() -> None:
    assert SUBPROTOCOLS == {"roomwire.v1.json": "json", "roomwire.v1.msgpack": "msgpack"}
    assert codec_for("json") is JSON
    assert codec_for("msgpack") is MSGPACK
    with pytest.raises(ValueError, match="unknown codec"):
        codec_for("cbor")


def test_client_frames_are_not_server_frames() -> None:
    # A server frame sent by a client is an unknown frame shape on that side.
    from roomwire.protocol.errors import ProtocolError

    with pytest.raises(ProtocolError):
        JSON.decode_client(JSON.encode(Pong(id=1)))
    with pytest.raises(ProtocolError):
        JSON.decode_server(JSON.encode(Ping(id=1)))
