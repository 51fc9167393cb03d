"""uvicorn's sans-I/O WebSocket protocol plus one ASGI extension: direct writes of framed bytes.

Plain ASGI sends one message per frame, each awaited, each a separate socket write. Under load
a connection often has several frames ready at once (a batch of events, their acks), so the
gateway frames them once per broadcast and writes all of a connection's frames with a single
`transport.write` per event-loop turn. The extension is only a fast path: when the socket is
paused by flow control, or the server is not this one, the gateway uses ordinary ASGI sends.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.frames import Opcode

from roomwire.gateway._inbound import InboundQueue
from roomwire.gateway._limits import LogBudget
from roomwire.protocol.codes import CloseCode

EXTENSION = "roomwire.direct_write"
# uvicorn builds this protocol by import path, with nothing per server to hold a log budget:
# one per process, like the logger it writes to.
_invalid_text = LogBudget(logging.getLogger("roomwire.gateway"))

Receiver = Callable[[str | bytes], bool]
"""Takes a complete message (str for text, bytes for binary); False: queue it for receive()."""


class DirectWriter:
    """What the gateway sees of the protocol: write framed bytes now, or say it cannot."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: RoomwireWebSocketProtocol) -> None:
        self._protocol = protocol

    def write(self, data: bytes) -> bool:
        """Write complete, already framed WebSocket frames; False when paused or closing."""
        protocol = self._protocol
        if not protocol.writable.is_open or protocol.disconnected or protocol.close_sent:
            return False
        protocol.transport.write(data)
        return True

    async def wait_writable(self) -> None:
        """Wait until flow control lets writes through again (or the connection is gone)."""
        await self._protocol.writable.wait()

    def feeds(self, receive: Any) -> bool:
        """True when `receive` is this connection's own ASGI receive (no middleware around it)."""
        return getattr(receive, "__self__", None) is self._protocol

    def receive_with(self, handler: Receiver | None) -> None:
        """Hand each message that arrives while the app waits in receive() to `handler` first.

        It runs inside the protocol's data_received, so the message needs no queue and no task
        switch; it returns False to have the message queued for receive() as usual. None stops.
        """
        self._protocol.receive_now = handler


_TEXT_HEAD = 0x80 | Opcode.TEXT.value  # FIN set, no RSV bits: no extension is negotiated
_BINARY_HEAD = 0x80 | Opcode.BINARY.value
_HEAD_16 = struct.Struct("!BBH")  # then a 16-bit length
_HEAD_64 = struct.Struct("!BBQ")  # then a 64-bit length


def frame_bytes(payload: bytes, *, text: bool) -> bytes:
    """A complete unmasked server frame (FIN set, no extensions) carrying `payload`.

    The base framing of RFC 6455 section 5.2, written here rather than through websockets'
    Frame.serialize (a dozen calls and a BytesIO): it runs once per broadcast. The tests check
    it byte for byte against websockets around every length boundary.
    """
    head = _TEXT_HEAD if text else _BINARY_HEAD
    size = len(payload)
    if size < 126:
        return bytes((head, size)) + payload
    if size < 65536:
        return _HEAD_16.pack(head, 126, size) + payload
    return _HEAD_64.pack(head, 127, size) + payload


class WriteGate:
    """uvicorn's `writable` Event (is_set, set, clear, wait) minus the Event's deque of waiters.

    Every connection has one and nearly always it is open; a waiter's future exists only while
    the socket is paused by flow control.
    """

    __slots__ = ("_waiters", "is_open")

    def __init__(self) -> None:
        self.is_open = True  # read directly by DirectWriter.write, once per frame
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """True when writes may go through."""
        return self.is_open

    def set(self) -> None:
        """Open the gate and wake every waiter."""
        self.is_open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Close the gate: waiters wait until the next `set`."""
        self.is_open = False

    async def wait(self) -> bool:
        """Return once the gate is open (at once when it is)."""
        if self.is_open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


def _is_utf8(frames: list[bytes]) -> bool:
    # A second decode of what uvicorn then decodes: about a microsecond per kilobyte of ASCII.
    try:
        (frames[0] if len(frames) == 1 else b"".join(frames)).decode()
    except UnicodeDecodeError:
        return False
    return True


class RoomwireWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol, advertising the direct-write extension in every WebSocket scope.

    It also receives through an InboundQueue, pausing the socket only when the app falls behind.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: InboundQueue = InboundQueue(self.loop)  # type: ignore[assignment]  # same methods
        self.writable: WriteGate = WriteGate()  # type: ignore[assignment]  # an Event without its deque
        self.receive_now: Receiver | None = None

    def send_receive_event_to_app(self) -> None:
        handler = self.receive_now
        # Only while the app is parked in receive() with nothing queued: a message handled here
        # then comes after every message the app has taken, so the connection's order holds.
        if handler is not None and self.queue.is_waiting() and not self.close_sent:
            frames = self.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            try:
                message = data.decode() if self.curr_msg_data_type == "text" else data
            except UnicodeDecodeError:
                self._refuse_invalid_text()
                return
            if handler(message):
                self.frames = []
                return
        elif self.curr_msg_data_type == "text" and not self.close_sent and not _is_utf8(self.frames):
            self._refuse_invalid_text()
            return
        paused = self.read_paused
        self.read_paused = True  # uvicorn's method pauses reading after every message unless paused
        super().send_receive_event_to_app()
        self.read_paused = paused
        if not paused and self.queue.is_full():
            self.read_paused = True
            self.transport.pause_reading()

    def _refuse_invalid_text(self) -> None:
        """Close 1007 for a text frame that is not UTF-8 (RFC 6455 section 8.1), with one log line.

        uvicorn's own path logs a full traceback per frame: a client could fill the log.
        """
        self.frames = []
        _invalid_text.info("closed a WebSocket from %s with 1007: text frame is not UTF-8", self.client)
        self.conn.send_close(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in a text frame")
        self.handle_parser_exception()

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # websockets' parser keeps the handshake request for the connection's whole life; its
        # headers were copied into the scope (or answered with an error) and are not read again.
        event.headers = Headers()
        # The ASGI task that reads the scope starts after this returns; compression would change
        # the frames, so the fast path is offered only without it.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.config.ws_per_message_deflate:
            scope["extensions"][EXTENSION] = DirectWriter(self)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # uvicorn reads the handshake's request and response only to send the accept; an idle
            # connection need not keep their headers for its whole life (memory per connection).
            self.request = None  # type: ignore[assignment]  # unused after the handshake
            self.response = None  # type: ignore[assignment]  # unused after the handshake
