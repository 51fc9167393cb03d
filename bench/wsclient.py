"""A minimal, fast WebSocket client (RFC 6455) on asyncio.Protocol, for the load generator only.

The load generator must not be the bottleneck, so the client does as little as a WebSocket client
can: one handshake, then frames parsed straight out of each received chunk, and every message of
a chunk handed to a callback with the chunk's arrival time (one clock read per chunk). Outgoing
frames use the all-zero masking key, which RFC 6455 allows (the server must unmask with whatever
key it gets) and which makes masking free. No extensions (no permessage-deflate) are offered, so
every server under test sends plain frames.

States: CONNECTING (handshake sent) → OPEN (101 received) → CLOSED (EOF, error or close frame).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable
from typing import cast

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HANDSHAKE_BYTES = 64 * 1024

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# on_message(client, payload, opcode, arrival_monotonic_ns)
MessageCallback = Callable[["WsClient", bytes, int, int], None]


class HandshakeError(Exception):
    """The server did not accept the WebSocket upgrade as requested."""


def _frame_header(opcode: int, length: int) -> bytes:
    # FIN + opcode, MASK bit + length, then the 4-byte masking key (all zeros).
    if length < 126:
        return bytes((0x80 | opcode, 0x80 | length, 0, 0, 0, 0))
    if length < 65536:
        return bytes((0x80 | opcode, 0xFE)) + length.to_bytes(2, "big") + b"\0\0\0\0"
    return bytes((0x80 | opcode, 0xFF)) + length.to_bytes(8, "big") + b"\0\0\0\0"


class WsClient(asyncio.Protocol):
    """One client connection; `opened` resolves after the upgrade, `closed` when the socket ends."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        on_message: MessageCallback,
        subprotocol: str | None = None,
        user: object = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.close_code: int | None = None
        self.subprotocol: str | None = None
        self.bytes_sent = 0
        self.last_sent_ns = 0
        self._host, self._port, self._path = host, port, path
        self._want_subprotocol = subprotocol
        self._on_message = on_message
        self._transport: asyncio.Transport | None = None
        self._key = base64.b64encode(os.urandom(16))
        self._is_open = False
        self._rest = b""  # bytes of an incomplete frame (or the handshake) kept for the next chunk
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        # The adapter's per-connection data; set before the handshake, since frames can arrive in
        # the same chunk as the 101 answer.
        self.user = user

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        lines = [
            f"GET {self._path} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self._want_subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {self._want_subprotocol}")
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        """Parse the handshake answer, then every complete frame in the chunk."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        if not self._is_open:
            data = self._handshake(data)
            if not data:
                return
        self._parse(data, time.monotonic_ns())

    def connection_lost(self, exc: Exception | None) -> None:
        """Resolve `closed` (and fail `opened` if the handshake never finished)."""
        self._is_open = False
        if not self.opened.done():
            self.opened.set_exception(exc or HandshakeError("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- sending -------------------------------------------------------------------------------

    def send_text(self, payload: bytes) -> None:
        """Send one text frame holding `payload` (UTF-8 bytes)."""
        self._send(OP_TEXT, payload)

    def send_binary(self, payload: bytes) -> None:
        """Send one binary frame."""
        self._send(OP_BINARY, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if transport is None or not self._is_open or transport.is_closing():
            return
        transport.write(_frame_header(opcode, len(payload)) + payload)
        self.bytes_sent += len(payload)

    @property
    def is_open(self) -> bool:
        """True between the 101 answer and the end of the connection."""
        return self._is_open

    def close(self, code: int = 1000) -> None:
        """Send a close frame and drop the connection without waiting for the echo."""
        if self._is_open:
            self._send(OP_CLOSE, code.to_bytes(2, "big"))
        self._is_open = False
        if self._transport is not None:
            self._transport.close()

    # --- parsing -------------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > _MAX_HANDSHAKE_BYTES:
                self._fail(HandshakeError("handshake answer too large"))
            else:
                self._rest = data
            return b""
        head = data[:end].decode("latin-1").split("\r\n")
        status = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self._fail(HandshakeError(f"upgrade refused: {head[0]!r}"))
            return b""
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            self._fail(HandshakeError("bad Sec-WebSocket-Accept"))
            return b""
        self.subprotocol = headers.get("sec-websocket-protocol")
        if self._want_subprotocol and self.subprotocol != self._want_subprotocol:
            self._fail(HandshakeError(f"server chose subprotocol {self.subprotocol!r}"))
            return b""
        if "sec-websocket-extensions" in headers:
            self._fail(HandshakeError("server negotiated an extension that was not offered"))
            return b""
        self._is_open = True
        self.opened.set_result(None)
        return data[end + 4 :]

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def _parse(self, data: bytes, now_ns: int) -> None:
        pos, size = 0, len(data)
        on_message = self._on_message
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:
                self._fail(HandshakeError("server sent a masked frame"))
                return
            end = pos + head + length
            if end > size:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:
                    on_message(self, payload, opcode, now_ns)
                else:
                    self._fragment_opcode = opcode
                    self._fragments = [payload]
            elif opcode == OP_CONT:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    on_message(self, whole, self._fragment_opcode, now_ns)
            elif opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.close(1000)  # echo a normal close; the code the server gave is kept
                return
        if pos < size:
            self._rest = data[pos:]


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: MessageCallback,
    subprotocol: str | None = None,
    user: object = None,
    timeout_s: float = 10.0,
) -> WsClient:
    """Open a connection and wait for the upgrade; raises HandshakeError or OSError."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(host, port, path, on_message, subprotocol, user), host, port),
        timeout_s,
    )
    await asyncio.wait_for(client.opened, timeout_s)
    return client
