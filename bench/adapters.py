"""Client adapters: how the load generator joins rooms and sends and reads moves on each server.

Every adapter uses the same raw WebSocket client (wsclient.py), so the load generator's own cost
per message is the same whichever server is measured. Each `move` carries the sender's
time.monotonic_ns(), one clock for every process on Linux, so each receiver computes the
end-to-end latency of every delivery.

- `roomwire`: the roomwire wire protocol (docs/design.md, src/roomwire/protocol/frames.py): lobby
  `POST /auth/guest`, `POST /rooms` then `POST /rooms/{id}/seats`, WebSocket at the lobby's `ws`
  path with subprotocol `roomwire.v1.json` (or `.msgpack`), `hello` → `welcome`, `join` → `joined`,
  `msg` without id (fire and forget) → `event`.
- `bare`: the same JSON shapes on the bare websockets baseline; rooms are joined by name.
- `socketio`: Engine.IO v4 / Socket.IO v5 spoken directly over WebSocket (no polling, no
  python-socketio client: its per-event cost would make the load generator the bottleneck).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from array import array
from typing import Any

import msgspec
from lobbyclient import LobbyClient
from wsclient import WsClient, connect

# --- what every adapter reports into ---------------------------------------------------------


class Stats:
    """Counters of one measurement window, fed by every client's receive path."""

    def __init__(self) -> None:
        self.window_start_ns = 1 << 62  # nothing is counted until a window begins
        self.latencies_ns = array("q")
        self.received = 0
        self.expected = 0
        self.sent = 0
        self.out_of_order = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.drained = asyncio.Event()
        self.is_sending = False

    def begin_window(self, start_ns: int) -> None:
        """Count only what is sent from `start_ns` on."""
        self.window_start_ns = start_ns
        self.latencies_ns = array("q")
        self.received = self.expected = self.sent = self.out_of_order = 0
        self.drained = asyncio.Event()
        self.is_sending = True

    def end_sending(self) -> None:
        """No more sends in this window: `drained` is set once every expected delivery arrived."""
        self.is_sending = False
        if self.received >= self.expected:
            self.drained.set()

    def note_error(self, text: str) -> None:
        """Count a server error frame, keeping the first few for the report."""
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


class Client:
    """One connection of the load generator, in one room."""

    __slots__ = ("last_seq", "move_head", "pending", "player", "room", "room_size", "ws")

    def __init__(self, room: str, room_size: int) -> None:
        self.room = room
        self.room_size = room_size
        self.ws: WsClient | None = None
        self.player = ""
        self.last_seq = -1
        self.move_head = b""
        # The reply a setup step or a ping waits for; resolved by the receive path.
        self.pending: asyncio.Future[Any] | None = None


def _resolve(client: Client, value: Any) -> None:
    fut = client.pending
    if fut is not None and not fut.done():
        fut.set_result(value)


def _reject(client: Client, exc: Exception) -> None:
    fut = client.pending
    if fut is not None and not fut.done():
        fut.set_exception(exc)


async def _wait_reply(client: Client, send: Any, timeout_s: float = 15.0) -> Any:
    client.pending = asyncio.get_running_loop().create_future()
    send()
    try:
        return await asyncio.wait_for(client.pending, timeout_s)
    finally:
        client.pending = None


class ServerRefused(Exception):
    """The server answered a setup step with an error."""


# --- frames read by the roomwire and bare adapters (same JSON shapes) -------------------------


class _Data(msgspec.Struct):
    p: str | None = None
    ts: int | None = None


class _Frame(msgspec.Struct):
    t: str
    room: str | None = None
    seq: int | None = None
    type: str | None = None
    data: _Data | None = None
    player: str | None = None
    heartbeat_s: float | None = None
    code: str | None = None
    message: str | None = None
    id: int | None = None


class _AnyFrame(msgspec.Struct):
    t: str
    room: str | None = None
    seq: int | None = None
    type: str | None = None
    data: Any = None


class Adapter:
    """Base: connection bookkeeping shared by the three protocols."""

    name = "base"

    def __init__(self, host: str, port: int, stats: Stats) -> None:
        self.host, self.port, self.stats = host, port, stats
        self.clients: list[Client] = []
        self.connect_slots = asyncio.Semaphore(64)  # bounded concurrent handshakes

    async def open_room(self, index: int, size: int) -> list[Client]:
        """Open `size` clients joined to one new room."""
        raise NotImplementedError

    def send_move(self, client: Client, x: int, ts_ns: int) -> None:
        """Fire one `move` (no reply expected)."""
        raise NotImplementedError

    async def echo(self, client: Client, ts_ns: int) -> int:
        """Send one request and wait for its reply; returns the reply's arrival time (monotonic ns)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Background work the protocol needs (heartbeats)."""

    async def aclose(self) -> None:
        """Close every client."""
        for client in self.clients:
            if client.ws is not None:
                client.ws.close()
        self.clients.clear()

    def closed_count(self) -> int:
        """Clients whose connection ended (the server closed or dropped it)."""
        return sum(1 for c in self.clients if c.ws is None or c.ws.closed.done())

    def close_codes(self) -> dict[str, int]:
        """How many clients were closed with each close code."""
        codes: dict[str, int] = {}
        for c in self.clients:
            if c.ws is not None and c.ws.closed.done():
                key = str(c.ws.close_code)
                codes[key] = codes.get(key, 0) + 1
        return codes


class _FrameAdapter(Adapter):
    """Receive path shared by roomwire and bare: the same `event` frame shape."""

    def __init__(self, host: str, port: int, stats: Stats, binary: bool = False) -> None:
        super().__init__(host, port, stats)
        self.binary = binary
        if binary:
            self._decode = msgspec.msgpack.Decoder(_Frame).decode
            self._decode_any = msgspec.msgpack.Decoder(_AnyFrame).decode
            self._encode = msgspec.msgpack.Encoder().encode
        else:
            self._decode = msgspec.json.Decoder(_Frame).decode
            self._decode_any = msgspec.json.Decoder(_AnyFrame).decode
            self._encode = msgspec.json.Encoder().encode

    def on_message(self, ws: WsClient, payload: bytes, opcode: int, now_ns: int) -> None:
        """Account one frame from the server."""
        client: Client = ws.user  # type: ignore[assignment]  # set when the client was opened
        try:
            frame = self._decode(payload)
        except msgspec.ValidationError:
            # An event whose data is not move-shaped (a framework event, say): not a delivery.
            any_frame = self._decode_any(payload)
            if any_frame.t == "event" and any_frame.seq is not None:
                self._check_order(client, any_frame.seq)
            return
        if frame.t == "event":
            data = frame.data
            if frame.seq is not None:
                self._check_order(client, frame.seq)
            if frame.type == "moved" and data is not None and data.ts is not None:
                stats = self.stats
                if data.ts >= stats.window_start_ns:
                    stats.latencies_ns.append(now_ns - data.ts)
                    stats.received += 1
                    if not stats.is_sending and stats.received >= stats.expected:
                        stats.drained.set()
            elif frame.type == "echo":
                _resolve(client, now_ns)
        elif frame.t in ("error", "reject"):
            text = f"{frame.t}: {frame.code}: {frame.message}"
            self.stats.note_error(text)
            _reject(client, ServerRefused(text))
        elif frame.t in ("pong", "ack"):
            return
        else:
            _resolve(client, frame)

    def _check_order(self, client: Client, seq: int) -> None:
        if seq <= client.last_seq:
            self.stats.out_of_order += 1
        client.last_seq = seq

    def _send_frame(self, client: Client, frame: dict[str, Any]) -> None:
        assert client.ws is not None
        if self.binary:
            client.ws.send_binary(self._encode(frame))
        else:
            client.ws.send_text(self._encode(frame))

    def send_move(self, client: Client, x: int, ts_ns: int) -> None:
        """Fire one `move` frame without an id (no ack)."""
        ws = client.ws
        assert ws is not None
        if self.binary:
            ws.send_binary(
                self._encode(
                    {"t": "msg", "room": client.room, "type": "move", "data": {"x": x, "y": x, "ts": ts_ns}}
                )
            )
        else:
            ws.send_text(b'%s%d.5,"y":%d.5,"ts":%d}}' % (client.move_head, x, x, ts_ns))
        ws.last_sent_ns = ts_ns

    async def echo(self, client: Client, ts_ns: int) -> int:
        """`echo` message (no id) answered by an `echo` event to the sender only."""
        frame = {"t": "msg", "room": client.room, "type": "echo", "data": {"ts": ts_ns}}
        return int(await _wait_reply(client, lambda: self._send_frame(client, frame)))

    async def _connect(self, client: Client, path: str, subprotocol: str | None) -> WsClient:
        ws = await connect(self.host, self.port, path, self.on_message, subprotocol, user=client)
        client.ws = ws
        self.clients.append(client)
        return ws

    def _prepare(self, client: Client) -> None:
        client.move_head = b'{"t":"msg","room":"%s","type":"move","data":{"x":' % client.room.encode()


class BareAdapter(_FrameAdapter):
    """The bare websockets baseline: join a room by name, no handshake."""

    name = "bare"

    async def open_room(self, index: int, size: int) -> list[Client]:
        """Open `size` clients in room `r<index>`."""
        return list(await asyncio.gather(*(self._open(f"r{index}", size) for _ in range(size))))

    async def _open(self, room: str, size: int) -> Client:
        client = Client(room, size)
        async with self.connect_slots:
            await self._connect(client, "/", None)
            joined = await _wait_reply(client, lambda: self._send_frame(client, {"t": "join", "room": room}))
        client.player = joined.player or ""
        self._prepare(client)
        return client


class RoomwireAdapter(_FrameAdapter):
    """The roomwire protocol: lobby for identity and seats, then hello / join on /ws."""

    name = "roomwire"

    def __init__(
        self, host: str, port: int, stats: Stats, codec: str = "json", room_type: str = "bench"
    ) -> None:
        super().__init__(host, port, stats, binary=codec == "msgpack")
        self.subprotocol = f"roomwire.v1.{codec}"
        self.room_type = room_type
        self.lobby = LobbyClient(host, port)
        self.heartbeat_s = 0.0
        self._heartbeat: asyncio.Task[None] | None = None
        self._ping_ids = itertools.count(1)

    async def open_room(self, index: int, size: int) -> list[Client]:
        """Create a room through the lobby, take a seat for each client, join them all."""
        async with self.connect_slots:
            first_token = await self._guest_token()
            created = await self.lobby.post("/rooms", {"type": self.room_type}, first_token)
        room_id = str(created["room"])
        first = self._open(room_id, size, created)
        rest = (self._open(room_id, size, None) for _ in range(size - 1))
        return list(await asyncio.gather(first, *rest))

    async def _guest_token(self) -> str:
        guest = await self.lobby.post("/auth/guest", {})
        return str(guest["token"])

    async def _open(self, room_id: str, size: int, seat_answer: dict[str, Any] | None) -> Client:
        client = Client(room_id, size)
        async with self.connect_slots:
            if seat_answer is None:
                token = await self._guest_token()
                seat_answer = await self.lobby.post(f"/rooms/{room_id}/seats", {}, token)
            assert seat_answer is not None
            await self._connect(client, str(seat_answer.get("ws") or "/ws"), self.subprotocol)
            welcome = await _wait_reply(client, lambda: self._send_frame(client, {"t": "hello", "v": 1}))
            if welcome.t != "welcome":
                raise ServerRefused(f"expected welcome, got {welcome.t!r}")
            if welcome.heartbeat_s:
                self.heartbeat_s = float(welcome.heartbeat_s)
            joined = await _wait_reply(
                client,
                lambda: self._send_frame(client, {"t": "join", "room": room_id, "seat": seat_answer["seat"]}),
            )
            if joined.t != "joined":
                raise ServerRefused(f"expected joined, got {joined.t!r}")
        client.player = joined.player or ""
        client.last_seq = joined.seq if joined.seq is not None else -1
        self._prepare(client)
        return client

    async def start(self) -> None:
        """Keep idle connections alive: a `ping` when a client sent nothing for a third of heartbeat_s."""
        if self.heartbeat_s > 0 and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        period_ns = int(self.heartbeat_s * 1e9 / 3)
        while True:
            await asyncio.sleep(self.heartbeat_s / 3)
            now_ns = time.monotonic_ns()
            for client in self.clients:
                ws = client.ws
                if ws is not None and now_ns - ws.last_sent_ns > period_ns:
                    self._send_frame(client, {"t": "ping", "id": next(self._ping_ids)})
                    ws.last_sent_ns = now_ns

    async def aclose(self) -> None:
        """Stop heartbeats, close clients and the lobby pool."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        await super().aclose()
        await self.lobby.aclose()


# --- Socket.IO (Engine.IO v4 packets over WebSocket) ------------------------------------------


class _SioMoved(msgspec.Struct):
    room: str
    seq: int
    data: _Data


class SocketIOAdapter(Adapter):
    """python-socketio on uvicorn, spoken as raw Engine.IO v4 / Socket.IO v5 text packets."""

    name = "socketio"

    def __init__(self, host: str, port: int, stats: Stats) -> None:
        super().__init__(host, port, stats)
        self._decode_moved = msgspec.json.Decoder(tuple[str, _SioMoved]).decode
        self._decode_list = msgspec.json.Decoder(list[Any]).decode
        self._ack_ids = itertools.count(1)

    def on_message(self, ws: WsClient, payload: bytes, opcode: int, now_ns: int) -> None:
        """Account one Engine.IO packet."""
        client: Client = ws.user  # type: ignore[assignment]  # set when the client was opened
        kind = payload[:1]
        if kind == b"4":  # Engine.IO message: a Socket.IO packet follows
            sio = payload[1:2]
            if sio == b"2":  # EVENT
                if payload.startswith(b'42["moved"'):
                    _, moved = self._decode_moved(payload[2:])
                    if moved.seq <= client.last_seq:
                        self.stats.out_of_order += 1
                    client.last_seq = moved.seq
                    ts = moved.data.ts
                    stats = self.stats
                    if ts is not None and ts >= stats.window_start_ns:
                        stats.latencies_ns.append(now_ns - ts)
                        stats.received += 1
                        if not stats.is_sending and stats.received >= stats.expected:
                            stats.drained.set()
                return
            if sio == b"3":  # ACK: digits of the ack id, then the JSON array of arguments
                body = payload[2:]
                i = 0
                while body[i : i + 1].isdigit():
                    i += 1
                _resolve(client, (now_ns, self._decode_list(body[i:])))
            elif sio == b"0":  # CONNECT accepted
                _resolve(client, ("connected", payload[2:]))
            elif sio == b"4":  # CONNECT_ERROR
                self.stats.note_error(payload.decode(errors="replace"))
                _reject(client, ServerRefused(payload.decode(errors="replace")))
        elif kind == b"2":  # Engine.IO ping: answer pong
            ws.send_text(b"3")
        elif kind == b"0":  # Engine.IO open
            _resolve(client, ("open", payload[1:]))
        elif kind == b"1":  # Engine.IO close
            ws.close()

    async def open_room(self, index: int, size: int) -> list[Client]:
        """Open `size` clients and `join` room `r<index>`."""
        return list(await asyncio.gather(*(self._open(f"r{index}", size) for _ in range(size))))

    async def _open(self, room: str, size: int) -> Client:
        client = Client(room, size)
        async with self.connect_slots:
            client.pending = asyncio.get_running_loop().create_future()
            ws = await connect(
                self.host, self.port, "/socket.io/?EIO=4&transport=websocket", self.on_message, user=client
            )
            client.ws = ws
            self.clients.append(client)
            await asyncio.wait_for(client.pending, 15)  # the open packet
            await _wait_reply(client, lambda: ws.send_text(b"40"))
            ack_id = next(self._ack_ids)
            _, args = await _wait_reply(
                client, lambda: ws.send_text(b'42%d["join",{"room":"%s"}]' % (ack_id, room.encode()))
            )
        client.player = str(args[0].get("player", "")) if args else ""
        client.last_seq = int(args[0].get("seq", -1)) if args else -1
        return client

    def send_move(self, client: Client, x: int, ts_ns: int) -> None:
        """Emit `move` without an ack."""
        ws = client.ws
        assert ws is not None
        ws.send_text(b'42["move",{"x":%d.5,"y":%d.5,"ts":%d}]' % (x, x, ts_ns))
        ws.last_sent_ns = ts_ns

    async def echo(self, client: Client, ts_ns: int) -> int:
        """Emit `echo` with an ack id; the server's handler returns the data as the ack."""
        ws = client.ws
        assert ws is not None
        ack_id = next(self._ack_ids)
        frame = b'42%d["echo",{"ts":%d}]' % (ack_id, ts_ns)
        now_ns, _ = await _wait_reply(client, lambda: ws.send_text(frame))
        return int(now_ns)


# --- Colyseus (its binary room protocol: a code byte, a msgpack type string, msgpack data) ---------

_COLYSEUS_JOIN_ROOM, _COLYSEUS_ERROR, _COLYSEUS_ROOM_DATA = 10, 11, 13


class _ColyseusData(msgspec.Struct):
    ts: int | float | None = None


class ColyseusAdapter(Adapter):
    """Colyseus 0.18 (@colyseus/core + ws-transport): HTTP matchmaking, then binary room frames."""

    name = "colyseus"

    def __init__(self, host: str, port: int, stats: Stats) -> None:
        super().__init__(host, port, stats)
        self.lobby = LobbyClient(host, port)
        self._decode = msgspec.msgpack.Decoder(_ColyseusData).decode
        self._encode = msgspec.msgpack.Encoder().encode
        self._move_type = b"\x0d" + self._encode("move")
        self._echo_type = b"\x0d" + self._encode("echo")

    def on_message(self, ws: WsClient, payload: bytes, opcode: int, now_ns: int) -> None:
        """Account one Colyseus frame."""
        client: Client = ws.user  # type: ignore[assignment]  # set when the client was opened
        code = payload[0] if payload else -1
        if code == _COLYSEUS_ROOM_DATA and len(payload) > 2 and payload[1] & 0xE0 == 0xA0:
            end = 2 + (payload[1] & 0x1F)  # the type is a msgpack fixstr
            kind = payload[2:end]
            data = self._decode(payload[end:])
            if data.ts is None:
                return
            if kind == b"moved":
                stats = self.stats
                if data.ts >= stats.window_start_ns:
                    stats.latencies_ns.append(now_ns - int(data.ts))
                    stats.received += 1
                    if not stats.is_sending and stats.received >= stats.expected:
                        stats.drained.set()
            elif kind == b"echo":
                _resolve(client, now_ns)
        elif code == _COLYSEUS_JOIN_ROOM:
            ws.send_binary(bytes((_COLYSEUS_JOIN_ROOM,)))  # confirms the join: the server starts sending
            _resolve(client, "joined")
        elif code == _COLYSEUS_ERROR:
            text = payload[1:].decode(errors="replace")
            self.stats.note_error(text)
            _reject(client, ServerRefused(text))

    async def open_room(self, index: int, size: int) -> list[Client]:
        """Create a room by matchmaking, then join it by id for the other clients."""
        async with self.connect_slots:
            created = await self.lobby.post("/matchmake/create/bench", {})
        room_id = str(created["roomId"])
        first = self._open(room_id, size, created)
        rest = (self._open(room_id, size, None) for _ in range(size - 1))
        return list(await asyncio.gather(first, *rest))

    async def _open(self, room_id: str, size: int, seat: dict[str, Any] | None) -> Client:
        client = Client(room_id, size)
        async with self.connect_slots:
            if seat is None:
                seat = await self.lobby.post(f"/matchmake/joinById/{room_id}", {})
            assert seat is not None
            client.pending = asyncio.get_running_loop().create_future()
            path = f"/{seat['processId']}/{seat['roomId']}?sessionId={seat['sessionId']}"
            ws = await connect(self.host, self.port, path, self.on_message, user=client)
            client.ws = ws
            self.clients.append(client)
            await asyncio.wait_for(client.pending, 15)  # JOIN_ROOM, answered in on_message
            client.pending = None
        client.player = str(seat["sessionId"])
        return client

    def send_move(self, client: Client, x: int, ts_ns: int) -> None:
        """Send a `move` room message."""
        ws = client.ws
        assert ws is not None
        ws.send_binary(self._move_type + self._encode({"x": x + 0.5, "y": x + 0.5, "ts": ts_ns}))
        ws.last_sent_ns = ts_ns

    async def echo(self, client: Client, ts_ns: int) -> int:
        """Send `echo`; the room sends it back to this client."""
        ws = client.ws
        assert ws is not None
        frame = self._echo_type + self._encode({"ts": ts_ns})
        return int(await _wait_reply(client, lambda: ws.send_binary(frame)))

    async def aclose(self) -> None:
        """Close clients and the lobby pool."""
        await super().aclose()
        await self.lobby.aclose()


def make_adapter(target: str, host: str, port: int, stats: Stats, codec: str = "json") -> Adapter:
    """The adapter for a server kind: roomwire (embedded or on Redis), bare, socketio or colyseus."""
    if target in ("roomwire", "roomwire-redis"):
        return RoomwireAdapter(host, port, stats, codec=codec)
    if target == "bare":
        return BareAdapter(host, port, stats)
    if target == "socketio":
        return SocketIOAdapter(host, port, stats)
    if target == "colyseus":
        return ColyseusAdapter(host, port, stats)
    raise ValueError(f"unknown target {target!r}")
