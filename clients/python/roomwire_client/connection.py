"""One WebSocket shared by a Client's rooms: handshake, heartbeat, reconnect with failover, resume.

The connection runs one supervisor task that owns everything else it starts:

    connecting ──(welcome)──► open ──(drop, or close 1001/1006/1011/1012/1013/4002/4003/4005)──► connecting
         │                     │
         └──(gave up)──────────┴──(aclose, or any other close code)──────────────────────────► closed

On every (re)open each room presents its seat (first join) or its rejoin token with
`since=last_seq` (resume), then resends its unanswered messages (room.py). Rooms fail with
ConnectionLostError only when no server could be reached within `reconnect_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin, Subprotocol

from roomwire.protocol import (
    PROTOCOL_VERSION,
    SUBPROTOCOLS,
    Ack,
    ClientFrame,
    Codec,
    ErrorCode,
    Event,
    Hello,
    Joined,
    Left,
    Ping,
    Pong,
    Reject,
    ServerFrame,
    Welcome,
    codec_for,
)
from roomwire.protocol import Error as ErrorFrame
from roomwire.protocol.errors import ProtocolError
from roomwire_client._resume import Backoff, Endpoints
from roomwire_client.errors import ClientError, ConnectionLostError, ProtocolViolationError, error_for

if TYPE_CHECKING:
    from roomwire_client.room import Room

__all__ = ["RECONNECT_CLOSE_CODES", "Connection", "ConnectionState"]

logger = logging.getLogger("roomwire_client")

ConnectionState = Literal["idle", "connecting", "open", "closed"]
CodecName = Literal["json", "msgpack"]

# Close codes after which the client reconnects and resumes; any other close is final.
# 1006 means no close frame at all (the server or the network died).
RECONNECT_CLOSE_CODES: Final = frozenset({1001, 1006, 1011, 1012, 1013, 4002, 4003, 4005})
# Closes that say "this server is going away": fail over to the next one first.
_MOVE_ON_CLOSE_CODES: Final = frozenset({1001, 1012})
_MAX_SERVER_FRAME_BYTES: Final = 16 * 1024 * 1024
_DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024


class _Fatal(Exception):
    """Internal: connecting cannot succeed by retrying (wrong version, refused upgrade)."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(str(error))
        self.error = error


class Connection:
    """The WebSocket of one Client: frames out in order, frames in dispatched to rooms by room id."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        codec: CodecName = "json",
        client_name: str = "roomwire-python",
        reconnect: bool = True,
        reconnect_timeout_s: float = 30.0,
        handshake_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if codec not in ("json", "msgpack"):
            raise ValueError(f"codec must be 'json' or 'msgpack', not {codec!r}")
        self.endpoints = endpoints
        self.ws_path = "/ws"
        self.rooms: dict[str, Room] = {}
        self.welcome: Welcome | None = None
        self._wanted_codec: CodecName = codec
        self._codec: Codec = codec_for(codec)
        self._client_name = client_name
        self._reconnect = reconnect
        self._reconnect_timeout_s = reconnect_timeout_s
        self._handshake_timeout_s = handshake_timeout_s
        self._backoff = backoff or Backoff()
        self._origin = origin
        self._headers = dict(headers or {})
        self._state: ConnectionState = "idle"
        self._supervisor: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._outgoing: deque[bytes] = deque()
        self._outgoing_ready = asyncio.Event()
        self._last_received = 0.0
        self._reader_busy = False  # delivering to a full room inbox: silence is ours, not the server's
        self._ping_id = 0
        self._closing = False
        self.connects = 0  # successful handshakes, for observability and tests

    # --- used by Client and Room ------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """idle (never started), connecting, open or closed."""
        return self._state

    @property
    def is_open(self) -> bool:
        """True between `welcome` and the next drop."""
        return self._state == "open"

    @property
    def max_frame_bytes(self) -> int:
        """The server's frame limit (from `welcome`), or the protocol default before the first one."""
        return self.welcome.max_frame_bytes if self.welcome else _DEFAULT_MAX_FRAME_BYTES

    @property
    def url(self) -> str:
        """The WebSocket URL in use (or next to be tried)."""
        return self.endpoints.ws_url(self.ws_path)

    def frame_size(self, frame: ClientFrame) -> int:
        """Bytes this frame takes on the wire with the connection's codec."""
        return len(self._codec.encode(frame))

    def attach(self, room: Room) -> None:
        """Add a room; it joins now if the connection is open, else as soon as it opens."""
        self.rooms[room.id] = room
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._state = "connecting"
            self._supervisor = asyncio.create_task(self._supervise(), name="roomwire-client-connection")
        elif self.is_open:
            join = room.join_frame()
            if join is not None:
                self.send_frame(join)

    def detach(self, room: Room) -> None:
        """Forget a room that was left."""
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]

    def send_frame(self, frame: ClientFrame) -> bool:
        """Queue a frame for the socket, in call order; False (not sent) while not open.

        Frames are queued synchronously so that message ids reach the wire in the order they were
        allocated; what is lost in a drop is resent by the rooms on the next open.
        """
        if not self.is_open:
            return False
        self._outgoing.append(self._codec.encode(frame))
        self._outgoing_ready.set()
        return True

    def abort(self) -> None:
        """Drop the socket abruptly, as a network failure would; the client reconnects and resumes.

        Meant for fault-injection tests of resume; a no-op while not open.
        """
        if self._ws is not None:
            self._ws.transport.abort()

    async def aclose(self) -> None:
        """Close the socket and stop reconnecting. Rooms are not left: the server's grace applies."""
        self._closing = True
        task, self._supervisor = self._supervisor, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._state = "closed"
        for room in list(self.rooms.values()):
            room.on_lost(ConnectionLostError("the client was closed"))

    # --- supervisor -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            while not self._closing:
                try:
                    ws = await self._connect_any()
                except ClientError as exc:
                    self._fail(exc)
                    return
                self._backoff.reset()
                code, reason = await self._serve(ws)
                if self._closing:
                    return
                if not self._reconnect or code not in RECONNECT_CLOSE_CODES:
                    error = ConnectionLostError(f"connection closed: {code} {reason}".strip())
                    error.close_code, error.close_reason = code, reason
                    self._fail(error)
                    return
                logger.info("connection to %s closed (%s %s); reconnecting", self.url, code, reason)
                if code in _MOVE_ON_CLOSE_CODES:
                    self.endpoints.advance()
        except Exception as exc:
            # The supervisor must not die silently: rooms would wait forever. A bug lands here.
            logger.exception("the connection supervisor failed")
            self._fail(ConnectionLostError(f"internal client error: {exc!r}"))
        finally:
            self._state = "closed"

    def _fail(self, error: ClientError) -> None:
        logger.warning("connection lost for good: %s", error)
        self._state = "closed"
        for room in list(self.rooms.values()):
            room.on_lost(error)

    async def _connect_any(self) -> ClientConnection:
        """Open a socket and handshake, trying each server in turn with backoff until the deadline."""
        self._state = "connecting"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._reconnect_timeout_s
        attempts = 0
        while True:
            delay = self._backoff.next_delay()
            if delay > 0:
                # Backoff between attempts: this spaces out retries, it waits for nothing in particular.
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            url = self.url
            attempts += 1
            try:
                return await self._open(url)
            except _Fatal as exc:
                raise exc.error from exc
            except (OSError, TimeoutError, WebSocketException, ProtocolError, ProtocolViolationError) as exc:
                logger.info("cannot connect to %s: %s", url, exc)
                self.endpoints.advance()
                out_of_time = loop.time() >= deadline
                out_of_tries = not self._reconnect and attempts >= len(self.endpoints)
                if out_of_time or out_of_tries:
                    raise ConnectionLostError(
                        f"no server reachable after {attempts} attempts (last: {url}: {exc})"
                    ) from exc

    async def _open(self, url: str) -> ClientConnection:
        subprotocol = next(p for p, name in SUBPROTOCOLS.items() if name == self._wanted_codec)
        try:
            ws = await connect(
                url,
                subprotocols=[Subprotocol(subprotocol)],
                origin=Origin(self._origin) if self._origin is not None else None,
                additional_headers=self._headers or None,
                open_timeout=self._handshake_timeout_s,
                ping_interval=None,  # the protocol's own ping/pong is the heartbeat
                max_size=_MAX_SERVER_FRAME_BYTES,
                compression=None,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            if exc.response.status_code >= 500:
                raise  # a server in trouble: try another one
            raise _Fatal(
                ConnectionLostError(f"the server refused the WebSocket upgrade at {url}: {exc}")
            ) from exc
        try:
            self._codec = codec_for(SUBPROTOCOLS.get(ws.subprotocol or "", "json"))
            await ws.send(self._wire(self._codec.encode(Hello(v=PROTOCOL_VERSION, client=self._client_name))))
            async with asyncio.timeout(self._handshake_timeout_s):
                frame = self._codec.decode_server(await ws.recv(), max_bytes=_MAX_SERVER_FRAME_BYTES)
        except BaseException:
            await ws.close()
            raise
        if isinstance(frame, Welcome):
            self.welcome = frame
            return ws
        await ws.close()
        if isinstance(frame, ErrorFrame) and frame.code == ErrorCode.UNSUPPORTED_VERSION:
            raise _Fatal(error_for(frame.code, frame.message))
        raise ProtocolViolationError(f"expected `welcome` from {url}, got {frame!r}")

    def _wire(self, data: bytes) -> bytes | str:
        # JSON travels in text frames, MessagePack in binary frames.
        return data if self._codec.is_binary else data.decode("utf-8")

    async def _serve(self, ws: ClientConnection) -> tuple[int, str]:
        """Run one open connection until it ends; returns the close code and reason."""
        assert self.welcome is not None
        self._ws = ws
        self._outgoing.clear()  # frames meant for the old socket: rooms resend what matters
        self._state = "open"
        self.connects += 1
        self._last_received = asyncio.get_running_loop().time()
        for room in list(self.rooms.values()):
            join = room.join_frame()
            if join is not None:
                self.send_frame(join)
        writer = asyncio.create_task(self._write(ws), name="roomwire-client-writer")
        heartbeat = asyncio.create_task(
            self._heartbeat(ws, self.welcome.heartbeat_s), name="roomwire-client-heartbeat"
        )
        try:
            return await self._read(ws)
        finally:
            self._state = "connecting"
            self._ws = None
            for task in (writer, heartbeat):
                task.cancel()
            for task in (writer, heartbeat):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not self._closing:
                for room in list(self.rooms.values()):
                    room.on_drop()
            await ws.close()

    async def _read(self, ws: ClientConnection) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                if exc.rcvd is None:
                    return 1006, "connection dropped"
                return exc.rcvd.code, exc.rcvd.reason
            self._last_received = loop.time()
            if isinstance(raw, str) and self._codec.is_binary:
                logger.warning("ignoring a text frame on a MessagePack connection")
                continue
            try:
                frame = self._codec.decode_server(raw, max_bytes=_MAX_SERVER_FRAME_BYTES)
            except ProtocolError as exc:
                logger.warning("ignoring a frame the client cannot decode: %s", exc)
                continue
            self._reader_busy = True
            try:
                await self._dispatch(frame)
            finally:
                self._reader_busy = False
            self._last_received = loop.time()

    async def _dispatch(self, frame: ServerFrame) -> None:
        if isinstance(frame, (Pong, Welcome)):
            return
        room = self.rooms.get(frame.room) if frame.room is not None else None
        if room is None:
            if isinstance(frame, ErrorFrame):
                logger.warning("server error: %s", error_for(frame.code, frame.message, ref=frame.ref))
            elif not isinstance(frame, (Event, Ack, Left)):
                logger.debug("ignoring %r for a room this client is not in", frame)
            return
        if isinstance(frame, Event):
            await room.on_event(frame)
        elif isinstance(frame, Joined):
            room.on_joined(frame)
        elif isinstance(frame, Ack):
            room.on_ack(frame.id)
        elif isinstance(frame, Reject):
            room.on_reject(frame)
        elif isinstance(frame, ErrorFrame):
            room.on_error(frame)
        elif isinstance(frame, Left):
            room.on_left(frame)

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            while not self._outgoing:
                self._outgoing_ready.clear()
                await self._outgoing_ready.wait()
            data = self._outgoing.popleft()
            try:
                await ws.send(self._wire(data))
            except ConnectionClosed:
                return  # the reader sees the close and ends this connection

    async def _heartbeat(self, ws: ClientConnection, heartbeat_s: float) -> None:
        """Ping every heartbeat_s / 2; abort a socket that stayed silent for 2 * heartbeat_s."""
        loop = asyncio.get_running_loop()
        interval = max(heartbeat_s / 2, 0.01)
        while True:
            # A periodic timer: the heartbeat is defined in time, not by any event.
            await asyncio.sleep(interval)
            if not self._reader_busy and loop.time() - self._last_received > 2 * heartbeat_s:
                logger.info("no frame from %s for %.1f s; reconnecting", self.url, 2 * heartbeat_s)
                ws.transport.abort()
                return
            self._ping_id += 1
            self.send_frame(Ping(id=self._ping_id))
