"""End-to-end harness: the test game, a raw-frame WebSocket client, and lobby helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from roomwire import App, GatewaySettings, RejectedError
from roomwire.gateway.server import bind_socket

FRAME_TIMEOUT_S = 10.0


class Move(msgspec.Struct):
    """The test game's move: a step count."""

    n: int


def make_app(settings: GatewaySettings | None = None) -> App:
    """A small game exercising every runtime feature the gateway tests need."""
    app = App("gateway-tests", settings=settings)
    arena = app.room("arena", max_players=3, history=200, rate_limit=None, idle_timeout_s=60)

    @app.route("/stats", methods=["GET", "POST"])
    async def stats(request: Any) -> dict[str, Any]:
        if request.method == "POST":
            await app.lobby.set("visits", (await app.lobby.get("visits") or 0) + 1)
        return {"rooms": len(await app.lobby.list_rooms("arena")), "visits": await app.lobby.get("visits")}

    @app.route("/hello/{name}")
    def hello(request: Any) -> Any:  # a sync route runs in a thread, like Starlette's
        from starlette.responses import PlainTextResponse

        return PlainTextResponse(f"hello {request.path_params['name']}")

    @arena.on_create
    def create(room: Any, options: dict[str, Any]) -> None:
        room.state["total"] = 0
        room.state["label"] = options.get("label", "")

    @arena.on_join
    def join(room: Any, player: Any) -> None:
        if player.claims.get("banned"):
            raise RejectedError("banned players may not join")
        room.broadcast("joined", p=player.id)

    @arena.message("move")
    def move(room: Any, player: Any, msg: Move) -> None:
        room.state["total"] += msg.n
        room.broadcast("moved", p=player.id, n=msg.n, total=room.state["total"])

    @arena.message("boom")
    def boom(room: Any, player: Any, msg: Any) -> None:
        room.state["total"] += 1000
        room.broadcast("never", p=player.id)
        raise ValueError("a bug in the game")

    @arena.message("blob")
    def blob(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("blob", data="x" * 10_000)

    @arena.message("whisper")
    def whisper(room: Any, player: Any, msg: Any) -> None:
        room.send(player, "secret", n=room.state["total"])

    @arena.message("timers")
    def timers(room: Any, player: Any, msg: Any) -> None:
        room.after(0.6, fire, "c")
        room.after(0.2, fire, "a")
        room.after(0.4, fire, "b")

    @arena.message("end")
    def end(room: Any, player: Any, msg: Any) -> None:
        room.end("game over")

    return app


def fire(room: Any, label: str) -> None:
    """Timer callback of the test game (module level, so it survives recovery)."""
    room.broadcast("timer", label=label)


@dataclass
class Seat:
    """A seat from the lobby."""

    room: str
    player: str
    seat: str
    token: str


@dataclass
class RawClient:
    """A WebSocket speaking raw roomwire frames (no SDK), recording what it receives."""

    ws: ClientConnection
    codec: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1
    record: bool = True  # keep received frames in `frames`

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame in this connection's codec."""
        if self.codec == "json":
            await self.ws.send(json.dumps(frame))
        else:
            await self.ws.send(msgspec.msgpack.encode(frame))

    async def recv(self, timeout: float = FRAME_TIMEOUT_S) -> dict[str, Any]:
        """The next frame, decoded."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else msgspec.msgpack.decode(raw)
        if self.record:
            self.frames.append(frame)
        return frame

    async def recv_until(self, t: str, timeout: float = FRAME_TIMEOUT_S, **match: Any) -> dict[str, Any]:
        """Frames until one of kind `t` whose fields equal `match`; returns it."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["t"] == t and all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def hello(self) -> dict[str, Any]:
        """Handshake."""
        await self.send({"t": "hello", "v": 1})
        return await self.recv_until("welcome")

    async def join(
        self, seat: Seat | str, room: str | None = None, since: int | None = None
    ) -> dict[str, Any]:
        """Join with a seat; returns `joined` or the `error` frame."""
        token = seat.seat if isinstance(seat, Seat) else seat
        room_id = room or (seat.room if isinstance(seat, Seat) else "")
        frame: dict[str, Any] = {"t": "join", "room": room_id, "seat": token}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while True:
                got = await self.recv()
                if got["t"] in ("joined", "error") and got.get("room") == room_id:
                    return got

    async def msg(self, room: str, type: str, data: Any = None, *, id: int | None = -1) -> int | None:
        """Send a message; id -1 means the next id of this client, None sends no id."""
        msg_id = self.next_id if id == -1 else id
        if id == -1:
            self.next_id += 1
        frame: dict[str, Any] = {"t": "msg", "room": room, "type": type, "data": data}
        if msg_id is not None:
            frame["id"] = msg_id
        await self.send(frame)
        return msg_id

    def events(self, room: str | None = None, type: str | None = None) -> list[dict[str, Any]]:
        """Event frames received so far."""
        return [
            f
            for f in self.frames
            if f["t"] == "event"
            and (room is None or f["room"] == room)
            and (type is None or f["type"] == type)
        ]

    async def aclose(self) -> None:
        """Close the socket."""
        await self.ws.close()


@dataclass
class Server:
    """A running server and helpers to use its lobby and open raw connections."""

    url: str
    app: App
    http: httpx.AsyncClient
    clients: list[RawClient] = field(default_factory=list)

    async def guest(self, name: str | None = None) -> str:
        """A guest bearer token."""
        response = await self.http.post("/auth/guest", json={"name": name} if name else None)
        response.raise_for_status()
        return str(response.json()["token"])

    async def seat(
        self,
        type: str = "arena",
        *,
        token: str | None = None,
        create: bool = False,
        room: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> Seat:
        """A seat from the lobby: join-or-create, a new room, or a given room."""
        token = token or await self.guest()
        headers = {"authorization": f"Bearer {token}"}
        if room is not None:
            response = await self.http.post(f"/rooms/{room}/seats", headers=headers)
        elif create:
            response = await self.http.post(
                "/rooms", json={"type": type, "options": options or {}}, headers=headers
            )
        else:
            response = await self.http.post("/rooms/join-or-create", json={"type": type}, headers=headers)
        response.raise_for_status()
        body = response.json()
        return Seat(body["room"], body["player"], body["seat"], token)

    async def connect(
        self, codec: str = "json", *, hello: bool = True, max_queue: int | None = None
    ) -> RawClient:
        """A new raw WebSocket connection (closed at teardown)."""
        ws = await websockets.connect(
            self.url.replace("http", "ws", 1) + "/ws",
            subprotocols=[f"roomwire.v1.{codec}"],  # type: ignore[list-item]  # websockets' Subprotocol
            max_size=2**24,
            # Tests often leave frames unread; a bounded queue would stall the close handshake.
            max_queue=max_queue,
            open_timeout=FRAME_TIMEOUT_S,
        )
        client = RawClient(ws, codec)
        self.clients.append(client)
        if hello:
            await client.hello()
        return client

    async def player(
        self, seat: Seat | None = None, codec: str = "json", **kw: Any
    ) -> tuple[RawClient, Seat]:
        """A connected client that has joined a room (join-or-create unless a seat is given)."""
        seat = seat or await self.seat(**kw)
        client = await self.connect(codec)
        joined = await client.join(seat)
        assert joined["t"] == "joined", joined
        return client, seat


@asynccontextmanager
async def serving(url: str, app: App) -> AsyncIterator[Server]:
    """A Server handle for an app served at `url`; closes every client a test opened through it."""
    async with httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT_S) as http:
        srv = Server(url, app, http)
        try:
            yield srv
        finally:
            for client in srv.clients:
                await client.ws.close()


@asynccontextmanager
async def uvicorn_on_free_port(config_for: Callable[[str, int], uvicorn.Config]) -> AsyncIterator[int]:
    """uvicorn on a free 127.0.0.1 port with the settings `config_for(host, port)`; yields the port."""
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(config_for("127.0.0.1", port))
    # The socket already listens: connections wait in its backlog until the server is up.
    running = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield port
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(running, FRAME_TIMEOUT_S)
        finally:
            sock.close()
