"""Client data must be what every codec carries alike; ids and seqs are 64-bit signed (protocol §3)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import msgspec
import pytest

from roomwire.errors import ProtocolError
from roomwire.protocol import JSON, MSGPACK, ErrorCode, Msg
from roomwire.protocol.values import check_value


@pytest.mark.parametrize(
    "data",
    [2**64, -(2**63) - 1, {"a": [1, {"b": 2**70}]}, [0, -(2**80)]],
    ids=["2^64", "-2^63-1", "nested", "in-list"],
)
def test_json_integers_msgpack_cannot_carry_are_bad_frames(data: Any) -> None:
    raw = json.dumps({"t": "msg", "room": "r", "type": "x", "data": data, "id": 1})
    with pytest.raises(ProtocolError, match="integer") as info:
        JSON.decode_client(raw)
    assert info.value.error_code is ErrorCode.BAD_FRAME


def test_integers_at_the_edges_of_the_range_pass() -> None:
    data = {"lo": -(2**63), "hi": 2**64 - 1, "digits": "1" * 40}
    for codec in (JSON, MSGPACK):
        raw = codec.encode(Msg("r", "x", data, 1))
        assert codec.decode_client(raw) == Msg("r", "x", data, 1)


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
@pytest.mark.parametrize(
    "frame",
    [
        {"t": "msg", "room": "r", "type": "x", "id": 2**63},
        {"t": "msg", "room": "r", "type": "x", "id": 2**64 - 1},
        {"t": "join", "room": "r", "seat": "s", "since": 2**63},
        {"t": "ping", "id": 2**63},
    ],
    ids=["msg-id", "msg-id-max", "since", "ping-id"],
)
def test_ids_and_since_of_2_63_or_more_are_bad_frames(codec: Any, frame: dict[str, Any]) -> None:
    raw = json.dumps(frame) if codec is JSON else msgspec.msgpack.encode(frame)
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(raw)
    assert info.value.error_code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (msgspec.msgpack.Ext(5, b"x"), "MessagePack ext"),
        ({"at": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)}, "MessagePack timestamp"),
        ([b"raw"], "binary"),
        ({1: "one"}, "map key of type int"),
        ({"x": float("nan")}, "nan"),
        ([float("inf")], "inf"),
    ],
)
def test_msgpack_data_not_every_codec_carries_is_a_bad_frame(data: Any, problem: str) -> None:
    raw = msgspec.msgpack.encode({"t": "msg", "room": "r", "type": "x", "data": {"v": data}, "id": 1})
    with pytest.raises(ProtocolError, match=problem) as info:
        MSGPACK.decode_client(raw)
    assert info.value.error_code is ErrorCode.BAD_FRAME


def test_deeply_nested_data_is_refused_cleanly() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(ProtocolError, match="nested"):
        check_value(value)
