"""JSON and MessagePack codecs for frames, with the size limit checked before parsing."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from roomwire.protocol.codes import ErrorCode
from roomwire.protocol.errors import ProtocolError
from roomwire.protocol.frames import ClientFrame, Msg, ServerFrame
from roomwire.protocol.values import check_json_value, check_value

CodecName = Literal["json", "msgpack"]

SUBPROTOCOLS: Final[dict[str, CodecName]] = {
    "roomwire.v1.json": "json",
    "roomwire.v1.msgpack": "msgpack",
}
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024


class Codec:
    """Encodes and decodes frames in one wire format; `is_binary` says which WebSocket opcode."""

    __slots__ = ("_client_dec", "_enc", "_server_dec", "is_binary", "name")

    def __init__(self, name: CodecName) -> None:
        self.name: CodecName = name
        self.is_binary = name == "msgpack"
        if name == "json":
            self._enc: msgspec.json.Encoder | msgspec.msgpack.Encoder = msgspec.json.Encoder()
            self._client_dec: Any = msgspec.json.Decoder(ClientFrame)
            self._server_dec: Any = msgspec.json.Decoder(ServerFrame)
        elif name == "msgpack":
            self._enc = msgspec.msgpack.Encoder()
            self._client_dec = msgspec.msgpack.Decoder(ClientFrame)
            self._server_dec = msgspec.msgpack.Decoder(ServerFrame)
        else:
            raise ValueError(f"unknown codec {name!r}; use 'json' or 'msgpack'")

    def encode(self, frame: ClientFrame | ServerFrame) -> bytes:
        """Encode one frame."""
        return self._enc.encode(frame)

    def decode_client(self, data: bytes | str, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> ClientFrame:
        """Decode a frame sent by a client; raises ProtocolError for anything else.

        Message data must be what every codec carries alike (protocol.values): a MessagePack
        client's data reaches JSON clients as events, and every value must fit a commit.
        """
        frame: ClientFrame = _decode(self._client_dec, data, max_bytes)
        if type(frame) is Msg and frame.data is not None:
            if self.is_binary:  # ext, timestamps, binary, non-string keys, NaN: walk it
                check_value(frame.data, "message data")
            else:  # from JSON only an integer can be too wide: MessagePack-encode it to know
                check_json_value(frame.data, "message data", data)
        return frame

    def decode_server(self, data: bytes | str, max_bytes: int = 16 * 1024 * 1024) -> ServerFrame:
        """Decode a frame sent by a server; raises ProtocolError for anything else."""
        return _decode(self._server_dec, data, max_bytes)  # type: ignore[no-any-return]  # Decoder[ServerFrame]


def _decode(decoder: Any, data: bytes | str, max_bytes: int) -> Any:
    # The limit is in bytes on the wire: a text frame is measured in UTF-8, before any parsing.
    size = len(data)
    if isinstance(data, str) and size * 4 > max_bytes:  # UTF-8 takes at most 4 bytes a character
        size = len(data.encode())
    if size > max_bytes:
        raise ProtocolError(
            f"frame of {size} bytes exceeds the limit of {max_bytes} bytes",
            code=ErrorCode.FRAME_TOO_LARGE,
        )
    if isinstance(data, str) and isinstance(decoder, msgspec.msgpack.Decoder):
        data = data.encode()
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"not a valid frame: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"cannot decode frame: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("frame is nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame holds a string that is not UTF-8: {exc.reason}") from exc


JSON: Final = Codec("json")
MSGPACK: Final = Codec("msgpack")


def codec_for(name: str) -> Codec:
    """The shared codec instance for 'json' or 'msgpack'."""
    if name == "json":
        return JSON
    if name == "msgpack":
        return MSGPACK
    raise ValueError(f"unknown codec {name!r}; use 'json' or 'msgpack'")
