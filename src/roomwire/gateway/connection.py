"""Connection: one client WebSocket over raw ASGI, with a bounded send queue and one writer task.

States: handshaking (until `hello`) → ready → closing → closed. Frames other than `hello`
before ready get `not_ready`; a full send queue closes the connection (slow consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from roomwire.gateway._uvicorn_ws import DirectWriter, frame_bytes
from roomwire.protocol.codec import Codec
from roomwire.protocol.codes import CloseCode
from roomwire.protocol.frames import ServerFrame

if TYPE_CHECKING:
    from roomwire.gateway.fanout import Member

log = logging.getLogger("roomwire.gateway")

ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class WriteBatch:
    """Collects the connections written to while it is open, and flushes each once on close.

    The fan-out opens it around one commit, so a commit's events and acks leave in one socket
    write per connection right away, without waiting for another turn of the event loop.
    """

    __slots__ = ("dirty", "is_open")

    def __init__(self) -> None:
        self.dirty: list[Connection] = []
        self.is_open = False

    def __enter__(self) -> WriteBatch:
        self.is_open = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.is_open = False
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn._flush()


class Connection:
    """A client connection: what the gateway knows about it and how to write to it."""

    __slots__ = (
        "_closed",
        "_closer",
        "_drained",
        "_flush_scheduled",
        "_loop",
        "_queue",
        "_queued_bytes",
        "_send",
        "_wakeup",
        "aborted",
        "batch",
        "close_code",
        "close_reason",
        "codec",
        "direct",
        "errors_in_row",
        "handler",
        "id",
        "is_ready",
        "last_seen",
        "max_queue_bytes",
        "max_queue_frames",
        "opened_at",
        "rooms",
        "wire_kind",
        "writer",
    )

    def __init__(
        self,
        conn_id: int,
        codec: Codec,
        send: ASGISend,
        *,
        max_queue_frames: int,
        max_queue_bytes: int,
        direct: DirectWriter | None = None,
        batch: WriteBatch | None = None,
    ) -> None:
        self.id = conn_id
        self.codec = codec
        self._send = send
        # With a direct writer the queue holds framed bytes written once per loop turn; without
        # it, payloads (str for JSON) sent one ASGI message each.
        self.direct = direct
        self.wire_kind = (2 if codec.is_binary else 0) + (1 if direct is not None else 0)
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self.batch = batch
        # A list, not a deque: emptied after every write, it then holds no block of its own (a
        # cleared deque keeps two), and an idle connection is mostly that.
        self._queue: list[bytes | str] = []
        self._queued_bytes = 0
        self._wakeup: asyncio.Event | None = None  # made with the writer task, when one is needed
        self._closed = False
        self.max_queue_frames = max_queue_frames
        self.max_queue_bytes = max_queue_bytes
        self.is_ready = False
        self.opened_at = self.last_seen = time.monotonic()
        self.errors_in_row = 0
        self.rooms: dict[str, Member] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.writer: asyncio.Task[None] | None = None
        self.handler: asyncio.Task[Any] | None = asyncio.current_task()
        self.aborted = False
        self._closer: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None  # see wait_drained; rarely made

    @property
    def is_closed(self) -> bool:
        """True once a close was requested or the peer went away."""
        return self._closed

    @property
    def queued(self) -> tuple[int, int]:
        """Frames and bytes in the send queue (not yet handed to the socket)."""
        return len(self._queue), self._queued_bytes

    async def wait_drained(self, max_frames: int, max_bytes: int) -> bool:
        """Wait until at most max_frames frames and max_bytes bytes are queued; False once closed.

        The queue shrinks as the socket takes frames (flow control pauses that while the peer
        does not read), so a producer that waits here before queueing more never overflows it.
        """
        while not self._closed and (len(self._queue) > max_frames or self._queued_bytes > max_bytes):
            waiter = self._drained
            if waiter is None or waiter.done():
                waiter = self._drained = self._loop.create_future()
            await waiter
        return not self._closed

    def _wake_drained(self) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send_frame(self, frame: ServerFrame) -> None:
        """Encode and queue one frame."""
        self.send_wire(self.wire_for(self.codec.encode(frame)))

    def wire_for(self, payload: bytes) -> bytes | str:
        """What this connection queues for an encoded frame; the same for every connection of a
        `wire_kind`, so a broadcast is prepared once per kind."""
        if self.direct is not None:
            return frame_bytes(payload, text=not self.codec.is_binary)
        return payload if self.codec.is_binary else payload.decode()

    def write_now(self, data: bytes | str) -> None:
        """Like send_wire, but write at once when nothing is queued: a commit's only frame for
        this connection needs no batching (one socket write either way, two calls fewer)."""
        direct = self.direct
        # framed bytes in direct mode; write() says False when paused or closing: then queue it
        if not self._queue and not self._closed and direct is not None and direct.write(data):  # type: ignore[arg-type]
            return
        self.send_wire(data)

    def send_wire(self, data: bytes | str) -> None:
        """Queue what `wire_for` made; it is written at the end of this event-loop turn."""
        if self._closed:
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        if len(self._queue) > self.max_queue_frames or self._queued_bytes > self.max_queue_bytes:
            self.drop_slow_consumer()
            return
        if self.direct is None:
            self._kick_writer()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            batch = self.batch
            if batch is not None and batch.is_open:
                batch.dirty.append(self)
            else:
                self._loop.call_soon(self._flush)

    def _flush(self) -> bool:
        """Write every queued frame with one socket write; False if flow control holds them back."""
        self._flush_scheduled = False
        queue = self._queue
        if not queue or self._closed or self.direct is None:
            return True
        data = queue[0] if len(queue) == 1 else b"".join(queue)  # type: ignore[arg-type]  # bytes here
        if not self.direct.write(data):  # type: ignore[arg-type]  # framed bytes in direct mode
            self._kick_writer()  # the writer task waits for the socket to drain, then retries
            return False
        queue.clear()
        self._queued_bytes = 0
        if self._drained is not None:
            self._wake_drained()
        return True

    def drop_slow_consumer(self, reason: str = "slow consumer: send queue full") -> None:
        """Promise 7 / bounded memory: a client that cannot keep up is dropped; it resumes on reconnect.

        The writer is blocked on the socket's flow control, so queued frames are discarded and a
        separate task sends the close frame once the socket drains (or gives up after a while);
        then the receive loop is cancelled so the server closes the transport.
        """
        self._queue.clear()
        self._queued_bytes = 0
        self._closed = True
        self._wake_drained()
        self.close_code = CloseCode.SLOW_CONSUMER
        self.close_reason = reason
        if self.writer is not None:
            self.writer.cancel()
        self.aborted = True
        task = asyncio.create_task(self._close_then_abort(), name=f"roomwire-conn-{self.id}-abort")
        self._closer = task

    async def _close_then_abort(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(10):
                await self._send(
                    {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
                )
        if self.handler is not None and not self.handler.done():
            self.handler.cancel()

    def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is queued (or at once for a slow consumer)."""
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        self.close_reason = reason
        self._wake_drained()
        self._kick_writer()

    def start_writer(self) -> None:
        """Start the task that drains the send queue; with direct writes it starts only when needed
        (flow control or closing), so an idle connection costs no task."""
        if self.direct is None:
            self._kick_writer()

    def _kick_writer(self) -> None:
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = asyncio.Event()
        if self.writer is None:
            name = f"roomwire-conn-{self.id}-writer"
            self.writer = asyncio.create_task(self._write_forever(wakeup), name=name)
        wakeup.set()

    async def _write_forever(self, wakeup: asyncio.Event) -> None:
        send = self._send
        queue = self._queue
        try:
            while True:
                await wakeup.wait()
                wakeup.clear()
                if self.direct is not None:
                    while queue and not self._closed:
                        await self.direct.wait_writable()
                        if not self._flush() and not self._closed:
                            break  # not paused but refused: the socket is closing
                    if self._closed and queue:
                        self._flush_on_close()
                while queue:
                    data = queue[0]
                    # Popping a list's head moves the rest, at most max_queue_frames references,
                    # and only on servers without direct writes.
                    del queue[0]
                    self._queued_bytes -= len(data)
                    if self._drained is not None:
                        self._wake_drained()
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
                if self._closed:
                    await send(
                        {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
                    )
                    return
        except OSError:
            # The peer went away mid-write: the receive loop sees the disconnect and cleans up.
            self._closed = True
        except RuntimeError as exc:
            # uvicorn raises this when sending after the socket closed; same meaning as above.
            log.debug("connection %d: send after close: %s", self.id, exc)
            self._closed = True
        finally:
            self._wake_drained()  # a replay waiting for the queue to drain must not wait forever

    def _flush_on_close(self) -> None:
        if self.direct is not None and self._queue:
            data = b"".join(self._queue)  # type: ignore[arg-type]  # framed bytes in direct mode
            self._queue.clear()
            self._queued_bytes = 0
            self.direct.write(data)

    async def aclose_writer(self) -> None:
        """Stop the writer task (the socket is gone)."""
        self._closed = True
        self._wake_drained()
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer
