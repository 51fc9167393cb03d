"""Bad input to the codecs: only ProtocolError comes out, and the size limit is checked before parsing."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from roomwire.errors import ProtocolError, RoomwireError
from roomwire.protocol import DEFAULT_MAX_FRAME_BYTES, JSON, MSGPACK, Codec, ErrorCode, Msg, Ping
from roomwire.protocol import errors as protocol_errors

CODECS = [JSON, MSGPACK]
codecs = st.sampled_from(CODECS)

# Structured junk: maps and values that decode fine but are not (quite) frames, so the fuzzer
# reaches the validation step and not only the parser.
values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["hello", "join", "leave", "msg", "ping", "event", "ack"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["t", "v", "room", "seat", "since", "type", "data", "id", "client"])
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=15,
)


def _decode_only_protocol_errors(
    codec: Codec, data: bytes | str, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> None:
    try:
        codec.decode_client(data, max_bytes=max_bytes)
    except ProtocolError as exc:
        assert exc.error_code in (ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE)


def _wire(codec: Codec, value: Any) -> bytes:
    return msgspec.msgpack.encode(value) if codec.is_binary else msgspec.json.encode(value)


def test_protocol_error_is_the_one_in_the_public_tree() -> None:
    assert ProtocolError is protocol_errors.ProtocolError
    assert issubclass(ProtocolError, RoomwireError)


@given(data=st.binary(max_size=512), codec=codecs)
@example(data=b"", codec=JSON)
@example(data=b"", codec=MSGPACK)
@example(data=b"\xc1", codec=MSGPACK)  # never-used MessagePack byte
@example(data=b"\xd4\x01\x00", codec=MSGPACK)  # an extension type
@example(data=b"\xd6\xff\x00\x00\x00\x00", codec=MSGPACK)  # the timestamp extension
@example(data=b"\xff\xfe{}", codec=JSON)  # not UTF-8
@example(data=b'{"t":"ping","id":1e400}', codec=JSON)
@example(data=b'{"t":"ping","id":99999999999999999999999}', codec=JSON)
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes, codec: Codec) -> None:
    _decode_only_protocol_errors(codec, data)


@given(value=values, codec=codecs)
def test_arbitrary_structures_only_raise_protocol_error(value: Any, codec: Codec) -> None:
    _decode_only_protocol_errors(codec, _wire(codec, value))


@given(
    codec=codecs,
    cut=st.integers(min_value=0, max_value=200),
    flip=st.integers(min_value=0, max_value=200),
    byte=st.integers(min_value=0, max_value=255),
)
def test_damaged_frames_only_raise_protocol_error(codec: Codec, cut: int, flip: int, byte: int) -> None:
    wire = bytearray(codec.encode(Msg(room="room-1", type="move", data={"x": [1, 2.5, "z"]}, id=42)))
    if wire:
        wire[flip % len(wire)] = byte
    _decode_only_protocol_errors(codec, bytes(wire[: len(wire) - cut % (len(wire) + 1)]))


@given(text=st.text(max_size=200))
def test_arbitrary_text_only_raises_protocol_error_in_json(text: str) -> None:
    _decode_only_protocol_errors(JSON, text)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_deeply_nested_data_raises_protocol_error(codec: Codec) -> None:
    if codec.is_binary:
        wire_data = b"\x84\xa1t\xa3msg\xa4room\xa1r\xa4type\xa1x" + b"\xa4data" + b"\x91" * 5000 + b"\x90"
    else:
        wire_data = b'{"t":"msg","room":"r","type":"x","data":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ProtocolError):
        codec.decode_client(wire_data)


def test_msgpack_string_that_is_not_utf8_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        MSGPACK.decode_client(b"\x81\xa1t\xa2\x80\x80")  # {"t": <2 bytes that are not UTF-8>}


def test_text_given_to_the_msgpack_codec_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        MSGPACK.decode_client('{"t":"ping"}')


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{", "truncated"),
        (b"[]", "not a map"),
        (b'{"t":"nope"}', "unknown frame kind"),
        (b'{"room":"r"}', "no t"),
        (b'{"t":"leave"}', "missing required field"),
        (b'{"t":"msg","room":1,"type":"x"}', "wrong field type"),
        (b'{"t":"ping","id":true}', "bool is not an int"),
        (b'{"t":"event","room":"r","seq":1,"type":"x"}', "a server frame from a client"),
    ],
)
def test_bad_frames_are_bad_frame(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolError) as info:
        JSON.decode_client(data)
    assert info.value.error_code is ErrorCode.BAD_FRAME, why


# --- size limit -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_frame_at_the_limit_is_accepted_and_one_byte_over_is_too_large(codec: Codec) -> None:
    frame = Msg(room="r", type="say", data="")
    overhead = len(codec.encode(frame))
    # Pad the string so the encoded frame is exactly `limit` bytes.
    limit = 4096
    body = "a" * (limit - overhead - (2 if codec.is_binary else 0))
    at_limit = codec.encode(Msg(room="r", type="say", data=body))
    assert len(at_limit) == limit
    assert codec.decode_client(at_limit, max_bytes=limit) == Msg(room="r", type="say", data=body)
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(at_limit, max_bytes=limit - 1)
    assert info.value.error_code is ErrorCode.FRAME_TOO_LARGE


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_the_default_limit_is_64_kib(codec: Codec) -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 65536
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(codec.encode(Msg(room="r", type="say", data="a" * 65536)))
    assert info.value.error_code is ErrorCode.FRAME_TOO_LARGE


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_oversized_garbage_is_too_large_not_bad_frame(codec: Codec) -> None:
    # Were it parsed first, this would be bad_frame: too large proves the size check came first.
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(b"\xc1" * (8 * 1024 * 1024))
    assert info.value.error_code is ErrorCode.FRAME_TOO_LARGE


class _DecoderThatMustNotRun:
    def decode(self, data: object) -> object:
        raise AssertionError("the decoder ran on an oversized frame")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_oversized_input_never_reaches_the_decoder(name: str) -> None:
    codec = Codec(name)  # type: ignore[arg-type]  # parametrized with valid names
    # Reach into the private decoder to prove it is not called; a fresh instance keeps the shared one intact.
    codec._client_dec = _DecoderThatMustNotRun()
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(codec.encode(Ping(id=1)) + b" " * 100, max_bytes=10)
    assert info.value.error_code is ErrorCode.FRAME_TOO_LARGE


def test_text_frames_are_measured_in_utf8_bytes() -> None:
    text = JSON.encode(Msg(room="r", type="say", data="é" * 600)).decode("utf-8")
    assert len(text) < 1000 < len(text.encode("utf-8"))
    with pytest.raises(ProtocolError) as info:
        JSON.decode_client(text, max_bytes=1000)
    assert info.value.error_code is ErrorCode.FRAME_TOO_LARGE
