"""Gateway: one ASGI application serving the lobby (HTTP) and client connections (WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from roomwire.backends.base import Backend
from roomwire.backends.records import DisconnectInput, JoinInput, LeaveInput, MessageInput
from roomwire.errors import (
    MessageTooLargeError,
    NotJoinedError,
    RateLimitedError,
    RequestTimeoutError,
    RequestTooLargeError,
    RoomClosedError,
    RoomNotFoundError,
    RoomwireError,
)
from roomwire.gateway._http_limits import BodyLimits, limit_error_handler
from roomwire.gateway._limits import ClientBounds, LogBudget, MessageRates
from roomwire.gateway._uvicorn_ws import EXTENSION as DIRECT_WRITE
from roomwire.gateway.auth import TokenSigner
from roomwire.gateway.connection import Connection, WriteBatch
from roomwire.gateway.errors import error_code, error_frame
from roomwire.gateway.fanout import Member, PendingJoin, RoomFanout
from roomwire.gateway.lobby import WS_PATH, Authenticator, Lobby, LobbyData
from roomwire.gateway.metrics import RoomwireCollector, metrics_route, new_registry
from roomwire.protocol.codec import SUBPROTOCOLS, codec_for
from roomwire.protocol.codes import CloseCode, ErrorCode
from roomwire.protocol.errors import ProtocolError
from roomwire.protocol.frames import (
    PROTOCOL_VERSION,
    ClientFrame,
    Error,
    Hello,
    Join,
    Leave,
    Left,
    Msg,
    Ping,
    Pong,
    Reject,
    Welcome,
)
from roomwire.runtime import tracing
from roomwire.runtime.metrics import Metrics
from roomwire.runtime.presence import DEFAULT_PRESENCE_TTL_S, gateway_key, new_gateway_id, new_session
from roomwire.runtime.roomtype import RoomType
from roomwire.runtime.worker import Worker

log = logging.getLogger("roomwire.gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HARD_MAX_FRAME_BYTES = 1024 * 1024  # above this the server closes (1009) instead of answering


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Connection limits of a gateway; see docs/protocol.md for what clients are told."""

    heartbeat_s: float = 15.0
    handshake_timeout_s: float = 10.0
    max_frame_bytes: int = 64 * 1024
    max_queue_frames: int = 2048
    max_queue_bytes: int = 8 * 1024 * 1024
    allowed_origins: tuple[str, ...] | None = None
    join_timeout_s: float = 10.0
    max_protocol_errors: int = 10
    rejoin_ttl_s: float = 6 * 3600.0  # caps each room type's rejoin_ttl_s (RoomPolicy)
    # Gateway presence TTL: workers disconnect a dead gateway's players 7/6 to 2 TTL after it died.
    presence_ttl_s: float = DEFAULT_PRESENCE_TTL_S
    # Promise 7 at the edges (issue #10, items 11-13 and 16); docs/protocol.md section 12.
    # HTTP, lobby and app routes alike: body size (413), time for the body and for the request
    # head (408 / closed), size of the head (431).
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 10.0
    head_timeout_s: float = 10.0
    max_head_bytes: int = 32 * 1024
    max_meta_bytes: int = 4 * 1024  # a room's meta, encoded as JSON (413)
    # joins and leaves per connection (leaves also per player) per second, bursts of 2 s; far over: 4004
    join_rate_per_s: float = 10.0
    rooms_per_player_per_min: int | None = 30  # lobby room creations per player (429)
    max_connections_per_player: int | None = 8  # connections in rooms as one player, per gateway
    max_connections_per_ip: int | None = None  # open connections per client address, per gateway
    # With allowed_origins set: let clients that send no Origin (non-browser SDKs, bots) in.
    allow_missing_origin: bool = False
    # Prometheus metrics on GET /metrics of this server (docs/operations.md); off by default:
    # in production serve them on a port of their own (roomwire serve --metrics-port).
    metrics: bool = False


class Limiter:
    """Token bucket per player and room: `rate` per second, bursts of two seconds' worth."""

    __slots__ = ("burst", "rate", "stamp", "strikes", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.strikes = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return True
        self.strikes += 1
        return False


class Gateway:
    """Serves lobby routes and WebSocket clients; optionally runs a worker in the same process."""

    def __init__(
        self,
        *,
        backend: Backend,
        room_types: Mapping[str, RoomType],
        signer: TokenSigner,
        authenticate: Authenticator,
        routes: Sequence[BaseRoute] = (),
        guests: bool = True,
        settings: GatewaySettings | None = None,
        run_worker: bool = True,
        serve_clients: bool = True,
        worker_id: str | None = None,
        lease_ttl_s: float = 2.0,
        code_version: str = "",
        manage_backend: bool = True,
    ) -> None:
        self.backend = backend
        self.manage_backend = manage_backend
        self.room_types = room_types
        self.signer = signer
        self.settings = settings or GatewaySettings()
        self.id = new_gateway_id()
        self.code_version = code_version
        self.lobby = Lobby(
            backend,
            room_types,
            signer,
            authenticate,
            guests=guests,
            code_version=code_version,
            max_meta_bytes=self.settings.max_meta_bytes,
            rooms_per_player_per_min=self.settings.rooms_per_player_per_min,
        )
        self.lobby_data = LobbyData(backend)
        # Counted in plain ints on the hot path; read at scrape time (gateway.metrics).
        self.metrics = Metrics()
        role = ("all" if serve_clients else "worker") if run_worker else "gateway"
        self.metrics_registry = new_registry(
            RoomwireCollector(
                self.metrics,
                worker_getter=lambda: self.worker,
                connections=(lambda: len(self._conns)) if serve_clients else None,
                role=role,
            )
        )
        extra = [metrics_route(self.metrics_registry)] if self.settings.metrics else []
        self.http = BodyLimits(
            Starlette(
                routes=[*self.lobby.routes(), *extra, *routes],
                exception_handlers={
                    RequestTooLargeError: limit_error_handler,
                    RequestTimeoutError: limit_error_handler,
                },
            ),
            max_body_bytes=self.settings.max_body_bytes,
            body_timeout_s=self.settings.body_timeout_s,
        )
        self.worker = (
            Worker(
                room_types,
                backend,
                worker_id=worker_id,
                lease_ttl_s=lease_ttl_s,
                code_version=code_version,
                presence_ttl_s=self.settings.presence_ttl_s,
                metrics=self.metrics,
            )
            if run_worker
            else None
        )
        self.serve_clients = serve_clients
        self._fanouts: dict[str, RoomFanout] = {}
        self._batch = WriteBatch()
        self._conns: dict[int, Connection] = {}
        # Messages are appended from the socket's callback when the engine's log is in-process.
        # (getattr: a backend written before this member existed has no fast path, and still works)
        self._append_now = getattr(backend, "append_input_nowait", None)
        self._ids = itertools.count(1)
        self._sweeper: asyncio.Task[None] | None = None
        self._presence: asyncio.Task[None] | None = None
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # Promise 7: per-connection join/leave rate, connections per player and per address.
        self._bounds = ClientBounds(
            functools.partial(Limiter, self.settings.join_rate_per_s),
            max_per_player=self.settings.max_connections_per_player,
            max_per_address=self.settings.max_connections_per_ip,
        )
        self._refusals = LogBudget(log)  # a refused client may retry as fast as it likes
        self._message_rates = MessageRates(Limiter)  # per (room, player), across rejoins

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the backend and start the worker and the heartbeat sweeper."""
        if self._started:
            return
        self._started = True
        if self.manage_backend:
            await self.backend.open()
        if self.serve_clients:
            # Present before the first join names this gateway (see runtime.presence).
            await self._renew_presence()
            self._presence = asyncio.create_task(self._presence_forever(), name="roomwire-presence")
        if self.worker is not None:
            await self.worker.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="roomwire-sweeper")

    async def aclose(self) -> None:
        """Close every client (1001: resume elsewhere), stop the worker, close the backend if it owns it."""
        if not self._started:
            return
        self._started = False
        for conn in list(self._conns.values()):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        writers = [c.writer for c in self._conns.values() if c.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=2.0)
        for background in (self._sweeper, self._presence):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        if self._presence is not None:
            # Its clients were told to close above. Should a worker find the key gone before their
            # disconnects are appended, it appends the same disconnects (a second one changes nothing).
            with contextlib.suppress(RoomwireError):
                await self.backend.kv_delete(gateway_key(self.id))
        if self.worker is not None:
            await self.worker.aclose()
        for fan in list(self._fanouts.values()):
            fan.close()
        self._fanouts.clear()
        if self.manage_backend:
            await self.backend.aclose()

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        return len(self._conns)

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path == WS_PATH and self.serve_clients:
                await self._websocket(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        elif tracing.TRACER is not None and kind == "http":
            await tracing.traced_http(self.http, scope, receive, send)  # a span per lobby request
            return
        await self.http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await run_lifespan(receive, send, self.start, self.aclose)

    # --- connections ----------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        settings = self.settings
        if not self._origin_allowed(scope):
            await send({"type": "websocket.close", "code": CloseCode.POLICY, "reason": "origin not allowed"})
            return
        address = _client_address(scope)
        if not self._bounds.can_open(address):
            reason = f"too many connections from this address (limit {settings.max_connections_per_ip})"
            self._refusals.info("refused a connection from %s: %s", address, reason)
            await _refuse_upgrade(scope, send, reason)
            return
        offered: list[str] = list(scope.get("subprotocols") or [])
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        if offered and chosen is None:
            await send(
                {"type": "websocket.close", "code": CloseCode.POLICY, "reason": "unsupported subprotocol"}
            )
            return
        codec = codec_for(SUBPROTOCOLS[chosen] if chosen else "json")
        await send({"type": "websocket.accept", "subprotocol": chosen})
        self.metrics.connections_opened += 1
        # Nothing reads the handshake headers after the accept; the scope lives as long as the
        # connection, their copy need not (memory per idle connection).
        scope["headers"] = []
        conn = Connection(
            next(self._ids),
            codec,
            send,
            max_queue_frames=settings.max_queue_frames,
            max_queue_bytes=settings.max_queue_bytes,
            direct=(scope.get("extensions") or {}).get(DIRECT_WRITE),
            batch=self._batch,
        )
        conn.start_writer()
        self._conns[conn.id] = conn
        self._bounds.opened(address)
        direct = conn.direct
        # Only when `receive` is the protocol's own: middleware that wraps it must see every message.
        if direct is not None and self._append_now is not None and direct.feeds(receive):
            direct.receive_with(functools.partial(self._on_frame_now, conn))
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                    # Neither the message nor its data stays referenced while the loop waits for the
                    # next one: an idle connection would keep its last frame (often the join) alive.
                    del message
                    conn.last_seen = time.monotonic()
                    if not conn.is_closed:
                        await self._on_frame(conn, data)
                    del data
                elif message["type"] == "websocket.disconnect":
                    break
        except asyncio.CancelledError:
            if not conn.aborted:
                raise
            # A slow consumer: returning lets the server close the transport.
        finally:
            if direct is not None:
                direct.receive_with(None)
            del self._conns[conn.id]
            if conn.close_code is not None:  # closed by the server (a client's close sets none)
                self.metrics.closes[conn.close_code] += 1
            self._bounds.closed(conn, address)
            await self._on_disconnect(conn)

    def _origin_allowed(self, scope: Scope) -> bool:
        """The Origin rule (docs/deployment.md): with an allow-list, a browser's Origin must be on
        it; a client that sends none (not a browser) is let in only with allow_missing_origin."""
        settings = self.settings
        if settings.allowed_origins is None:
            return True
        origin = _header(scope, b"origin")
        if origin is None and settings.allow_missing_origin:
            return True
        if origin in settings.allowed_origins:
            return True
        self._refusals.info("refused a connection from origin %r", origin)
        return False

    def _on_frame_now(self, conn: Connection, data: str | bytes) -> bool:
        """The receive fast path, called by the protocol as a message arrives while the
        connection's task waits in receive(): what needs no waiting is handled here, without a
        task switch. False hands the message to that task (decoded once more: joins and leaves
        are rare)."""
        conn.last_seen = time.monotonic()
        if conn.is_closed:
            return True
        frame = self._decode(conn, data)
        return frame is None or self._handle_now(conn, frame, len(data))

    def _decode(self, conn: Connection, data: str | bytes) -> ClientFrame | None:
        """The frame in `data`, or None after answering a frame that is not valid."""
        settings = self.settings
        try:
            if isinstance(data, str) and conn.codec.is_binary:
                data = data.encode()
            frame = conn.codec.decode_client(data, settings.max_frame_bytes)
        except ProtocolError as exc:
            conn.errors_in_row += 1
            self.metrics.refused_frames[exc.error_code] += 1
            conn.send_frame(error_frame(exc))
            if len(data) > HARD_MAX_FRAME_BYTES:
                conn.close(CloseCode.TOO_BIG, "frame too large")
            elif conn.errors_in_row >= settings.max_protocol_errors:
                conn.close(CloseCode.PROTOCOL, "too many protocol errors")
            return None
        conn.errors_in_row = 0
        return frame

    async def _on_frame(self, conn: Connection, data: str | bytes) -> None:
        frame = self._decode(conn, data)
        if frame is None or self._handle_now(conn, frame, len(data)):
            return
        try:
            if type(frame) is Msg:
                await self._on_msg(conn, frame, len(data))
            elif type(frame) is Join:
                await self._on_join(conn, frame)
            elif type(frame) is Leave:
                await self._on_leave(conn, frame)
        except RoomwireError as exc:
            self._refuse(conn, frame, exc)

    def _handle_now(self, conn: Connection, frame: ClientFrame, size: int) -> bool:
        """Handle a frame that needs no waiting, on either path; False for one that does: a join
        or a leave (they wait for the room), or a message when the room's log is not in-process."""
        append_now = self._append_now
        if conn.is_ready and (
            type(frame) is Join or type(frame) is Leave or (type(frame) is Msg and append_now is None)
        ):
            return False
        try:
            if type(frame) is Msg and conn.is_ready:
                assert append_now is not None  # checked above
                item = self._message_input(conn, frame, size)
                try:
                    append_now(frame.room, item)
                except RoomNotFoundError as exc:
                    raise _room_closed() from exc
            else:
                self._on_control(conn, frame)
        except RoomwireError as exc:
            self._refuse(conn, frame, exc)
        except Exception:
            # On the fast path a bug would reach the protocol's data_received, which aborts the
            # transport without a close frame: both paths close with 1011 instead.
            log.exception("connection %d: failed to handle a %s frame", conn.id, type(frame).__name__)
            conn.close(CloseCode.INTERNAL, "internal error")
        return True

    def _on_control(self, conn: Connection, frame: ClientFrame) -> None:
        """Frames about the connection itself: ping, hello, and those sent out of turn."""
        if type(frame) is Ping:
            conn.send_frame(Pong(frame.id))
        elif not conn.is_ready:
            if type(frame) is Hello:
                self._on_hello(conn, frame)
            else:
                raise ProtocolError("send hello first", code=ErrorCode.NOT_READY)
        else:
            raise ProtocolError("hello was already received")

    def _refuse(self, conn: Connection, frame: ClientFrame, exc: RoomwireError) -> None:
        """Answer a frame that failed: a reject for a message with an id, else an error."""
        room = getattr(frame, "room", None)
        msg_id = frame.id if type(frame) is Msg else None
        code, message, ref = error_code(exc)  # once: an internal error is logged with a new ref
        self.metrics.refused_frames[code] += 1
        if msg_id is not None and room is not None:
            conn.send_frame(Reject(room, msg_id, code, message, ref))
        else:
            conn.send_frame(Error(code, message, room, ref))

    def _on_hello(self, conn: Connection, frame: Hello) -> None:
        if frame.v != PROTOCOL_VERSION:
            conn.send_frame(
                error_frame(
                    ProtocolError(
                        f"protocol version {frame.v} is not supported; this server speaks {PROTOCOL_VERSION}",
                        code=ErrorCode.UNSUPPORTED_VERSION,
                    )
                )
            )
            conn.close(CloseCode.PROTOCOL, "unsupported protocol version")
            return
        conn.is_ready = True
        conn.send_frame(
            Welcome(
                PROTOCOL_VERSION, conn.codec.name, self.settings.heartbeat_s, self.settings.max_frame_bytes
            )
        )

    def _message_input(self, conn: Connection, frame: Msg, size: int) -> MessageInput:
        """Check a message against the sender's membership and limits; the input to append."""
        member = conn.rooms.get(frame.room)
        if member is None:
            raise NotJoinedError(f"join room {frame.room!r} before sending to it")
        if size > member.max_bytes:
            raise MessageTooLargeError(
                f"message of {size} bytes exceeds this room's limit of {member.max_bytes}"
            )
        limiter = member.limiter
        if limiter is not None and not limiter.take():
            if limiter.strikes > 4 * limiter.burst:
                conn.close(CloseCode.FLOODING, "flooding: far over the rate limit")
            raise RateLimitedError(f"over the rate limit of {limiter.rate:g} messages per second")
        if frame.id is not None and frame.id <= 0:
            raise ProtocolError("message id must be a positive integer")
        if tracing.TRACER is not None:  # OpenTelemetry (roomwire[otel]): off unless enabled
            _, parent = tracing.receive_span(frame.room, frame.type)
            return MessageInput(
                member.player, frame.type, frame.data, frame.id, time.time(), member.session, parent
            )
        return MessageInput(member.player, frame.type, frame.data, frame.id, time.time(), member.session)

    async def _on_msg(self, conn: Connection, frame: Msg, size: int) -> None:
        item = self._message_input(conn, frame, size)
        try:
            await self.backend.append_input(frame.room, item)
        except RoomNotFoundError as exc:
            raise _room_closed() from exc

    async def _on_join(self, conn: Connection, frame: Join) -> None:
        self._bounds.check_join_rate(conn)
        seat = self.signer.verify_seat(frame.seat, frame.room)
        self._bounds.check_player(conn, seat.player_id)
        if frame.room in conn.rooms:
            raise ProtocolError(f"already in room {frame.room!r} on this connection")
        record = await self.backend.get_room(frame.room)
        if record is None:
            raise RoomNotFoundError(f"no room {frame.room!r} (it may have ended)")
        room_type = self.room_types.get(record.type)
        if room_type is None:
            raise RoomNotFoundError(f"room type {record.type!r} is not served here")
        if frame.since is not None:
            # HistoryGoneError before joining; one event is enough to know (the replay reads the rest)
            await self.backend.read_events(frame.room, frame.since, limit=1)
        fan = self._fanout(frame.room)
        ref = new_session(self.id)
        # The room type's rejoin_ttl_s is also how long the room remembers a removed player's ids;
        # GatewaySettings.rejoin_ttl_s caps it (promise 2: a seat never outlives that memory).
        rejoin_ttl_s = min(room_type.policy.rejoin_ttl_s, self.settings.rejoin_ttl_s)
        rejoin = self.signer.issue_seat(frame.room, seat.player_id, seat.claims, rejoin_ttl_s, rejoin=True)
        pending = PendingJoin(conn, seat.player_id, frame.since, rejoin)
        fan.pending[ref] = pending
        # Until this join is a member of this connection, the connection's end must still
        # record its disconnect: the room may apply the join after the server closed the
        # connection or cancelled this task (slow consumer, heartbeat, shutdown), and would
        # otherwise count the player as connected for ever (no grace, no leave; promise 3).
        joining = conn.joining
        if joining is None:
            joining = conn.joining = {}
        joining[ref] = (frame.room, seat.player_id)
        try:
            await self.backend.append_input(
                frame.room, JoinInput(seat.player_id, seat.claims, ref, time.time(), seat.rejoin)
            )
            receipt = await asyncio.wait_for(asyncio.shield(pending.outcome), self.settings.join_timeout_s)
        except TimeoutError as exc:
            self._forget_join(fan, ref)  # from now on its receipt finds nobody waiting: no member
            if not pending.outcome.done():
                joining.pop(ref, None)  # its disconnect is recorded here
                # The room may still apply the join, and no connection here would hold it: the
                # disconnect of that join (ignored if it never applies or is replaced) keeps the
                # room from counting the player as connected for ever.
                with contextlib.suppress(RoomwireError):
                    await self.backend.append_input(
                        frame.room, DisconnectInput(seat.player_id, time.time(), ref)
                    )
                raise RoomwireError("the room did not answer the join in time") from exc
            receipt = pending.outcome.result()  # answered just as the wait ran out
        except RoomNotFoundError as exc:
            joining.pop(ref, None)
            raise _room_closed() from exc
        except RoomClosedError:
            joining.pop(ref, None)  # the room ended: nothing to disconnect from
            raise
        finally:
            self._forget_join(fan, ref)
        if receipt.kind == "refused":
            joining.pop(ref, None)
            conn.send_frame(Error(receipt.code, receipt.message, frame.room))
            return
        member = conn.rooms.get(frame.room)
        if member is not None and member.session == ref:
            joining.pop(ref, None)  # a member now: the connection's end records its disconnect
            member.max_bytes = room_type.policy.max_message_bytes
            rate = room_type.policy.rate_limit
            member.limiter = (
                self._message_rates.limiter(frame.room, seat.player_id, rate) if rate is not None else None
            )

    def _forget_join(self, fan: RoomFanout, ref: str) -> None:
        if fan.pending.pop(ref, None) is not None and not fan.members:
            self._drop_fanout(fan)

    async def _on_leave(self, conn: Connection, frame: Leave) -> None:
        self._bounds.check_join_rate(conn)
        member = conn.rooms.get(frame.room)
        if member is None:
            raise NotJoinedError(f"not in room {frame.room!r}")
        self._bounds.check_player_leave_rate(conn, member.player)
        del conn.rooms[frame.room]
        fan = self._fanouts.get(frame.room)
        if fan is not None:
            fan.remove(member)
        conn.send_frame(Left(frame.room, "left"))
        with contextlib.suppress(RoomNotFoundError):
            await self.backend.append_input(
                frame.room, LeaveInput(member.player, "left", time.time(), member.session)
            )

    async def _on_disconnect(self, conn: Connection) -> None:
        await conn.aclose_writer()
        for room_id, member in list(conn.rooms.items()):
            fan = self._fanouts.get(room_id)
            if fan is not None and fan.remove(member):
                try:
                    await self.backend.append_input(
                        room_id, DisconnectInput(member.player, time.time(), member.session)
                    )
                except RoomwireError as exc:
                    log.debug("room %s: disconnect of %s not recorded: %s", room_id, member.player, exc)
        conn.rooms.clear()
        # Joins that never became a member here (the connection closed on their way): the room
        # ignores the disconnect of a join it refused or that a newer join replaced.
        joining, conn.joining = conn.joining, None
        for ref, (room_id, player) in (joining or {}).items():
            try:
                await self.backend.append_input(room_id, DisconnectInput(player, time.time(), ref))
            except RoomwireError as exc:
                log.debug("room %s: disconnect of join %s not recorded: %s", room_id, ref, exc)

    # --- fan-out registry -----------------------------------------------------------------------

    def _fanout(self, room_id: str) -> RoomFanout:
        fan = self._fanouts.get(room_id)
        if fan is None or fan.ended:
            fan = self._fanouts[room_id] = RoomFanout(room_id, self.backend, self._drop_fanout, self._batch)
        return fan

    def _drop_fanout(self, fan: RoomFanout) -> None:
        if self._fanouts.get(fan.room_id) is fan:
            del self._fanouts[fan.room_id]
        fan.close()

    async def _renew_presence(self) -> None:
        ttl_s = self.settings.presence_ttl_s
        await self.backend.kv_set(gateway_key(self.id), b"1", ttl_s=ttl_s)

    async def _presence_forever(self) -> None:
        """Keep this gateway's presence key alive, so workers know its players are still here.

        Workers count a gateway as gone when its key is missing on two checks TTL/2 apart, which
        takes 1.5 TTL or more between two good renewals. A renewal that ends that long after the
        previous good one began (the gateway was stalled, or cut off from the engine) may come
        after workers disconnected its players: its clients are then closed with 1012, and resume
        (rejoin), which makes them connected again in their rooms.
        """
        ttl_s = self.settings.presence_ttl_s
        last_good = time.monotonic()  # when the last good renewal began (start() made one)
        while True:
            await asyncio.sleep(ttl_s / 3)
            began = time.monotonic()
            try:
                await self._renew_presence()
            except RoomwireError:
                log.warning("gateway %s: could not renew its presence; will retry", self.id)
                continue
            lapse = time.monotonic() - last_good
            last_good = began
            if lapse >= 1.5 * ttl_s and self._conns:
                log.warning(
                    "gateway %s: %.1f s between good presence renewals; closing %d connections "
                    "so they resume",
                    self.id,
                    lapse,
                    len(self._conns),
                )
                for conn in list(self._conns.values()):
                    conn.close(CloseCode.SERVICE_RESTART, "presence lapsed: reconnect and resume")

    async def _sweep_forever(self) -> None:
        """Close connections that never said hello, or went silent past two heartbeats."""
        settings = self.settings
        interval = min(1.0, settings.heartbeat_s / 4)
        while True:
            await asyncio.sleep(interval)  # a periodic sweep is cheaper than a timer per frame
            now = time.monotonic()
            for conn in list(self._conns.values()):
                if not conn.is_ready and now - conn.opened_at > settings.handshake_timeout_s:
                    conn.close(CloseCode.HANDSHAKE_TIMEOUT, "no hello in time")
                elif now - conn.last_seen > 2 * settings.heartbeat_s:
                    conn.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")


async def run_lifespan(
    receive: Receive, send: Send, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Answer an ASGI lifespan conversation: `start` on startup (failures reported), `stop` on shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await start()
            except Exception as exc:  # reported to the server, which refuses to start
                log.exception("roomwire failed to start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _room_closed() -> RoomClosedError:
    """What a client hears when it sends to a room that no longer exists."""
    return RoomClosedError("the room has ended")


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _refuse_upgrade(scope: Scope, send: Send, message: str) -> None:
    """Refuse a WebSocket upgrade with HTTP 429 and the lobby's error body (where the server
    offers the ASGI denial response; else a policy close, which is an HTTP 403)."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": CloseCode.POLICY, "reason": message})
        return
    body = json.dumps({"error": {"code": ErrorCode.RATE_LIMITED.value, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


__all__ = ["Gateway", "GatewaySettings", "Member"]
