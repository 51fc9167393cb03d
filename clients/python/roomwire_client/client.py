"""Client: the entry point of the SDK — lobby calls, then rooms over one shared WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import MappingProxyType, TracebackType

import httpx

from roomwire.protocol import Leave
from roomwire.protocol.frames import JSONValue
from roomwire_client._resume import Backoff, Endpoints
from roomwire_client.connection import CodecName, Connection
from roomwire_client.errors import ClientError, RequestTimeoutError
from roomwire_client.lobby import Lobby, RoomInfo, Seat
from roomwire_client.room import Room

__all__ = ["Client"]


class Client:
    """A player's connection to a roomwire server (or to several, for failover).

    All rooms of a Client share one WebSocket; frames carry the room id. When the connection
    drops, the Client reconnects (trying each server base URL in turn, with backoff), rejoins
    every room with `since` = its last seq, and resends unanswered messages with their ids.

    Args:
        servers: base URL(s) of the server, e.g. "http://127.0.0.1:8000"; with several, lobby
            calls and reconnects fail over to the next one.
        token: a bearer token (from `app.issue_token`); or call `login_guest()`.
        codec: "json" (text frames) or "msgpack" (binary frames).
        reconnect: reconnect and resume after a drop; False makes any drop final.
        reconnect_timeout_s: give up (rooms fail with ConnectionLostError) after this long.
        connect_timeout_s: per attempt, for the WebSocket upgrade and `hello`/`welcome`; a
            server that accepts TCP but does not answer (hung) is left for the next after this.
        join_timeout_s: how long `join`/`create`/`join_or_create` wait for `joined`.
        max_pending: unanswered messages per room before `send` waits.
        max_buffered_events: received, unread events per room before reading from the socket
            pauses (read `events()` or `next_event()` to keep up).
        http: an httpx.AsyncClient to use for lobby calls (not closed by `aclose`).
        origin: the Origin header of the WebSocket upgrade, for servers with an Origin
            allow-list that do not let clients without one in (docs/deployment.md).
        headers: extra HTTP headers of the WebSocket upgrade (e.g. for a proxy's auth).
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        token: str | None = None,
        codec: CodecName = "json",
        *,
        client_name: str = "roomwire-python",
        reconnect: bool = True,
        reconnect_timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        join_timeout_s: float = 10.0,
        max_pending: int = 1000,
        max_buffered_events: int = 10_000,
        backoff: Backoff | None = None,
        http: httpx.AsyncClient | None = None,
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoints = Endpoints(servers)
        self.lobby = Lobby(self.endpoints, token=token, http=http)
        self.connection = Connection(
            self.endpoints,
            codec=codec,
            client_name=client_name,
            reconnect=reconnect,
            reconnect_timeout_s=reconnect_timeout_s,
            handshake_timeout_s=connect_timeout_s,
            backoff=backoff,
            origin=origin,
            headers=headers,
        )
        self.player: str | None = None
        self._join_timeout_s = join_timeout_s
        self._max_pending = max_pending
        self._max_buffered_events = max_buffered_events

    @property
    def token(self) -> str | None:
        """The bearer token used for lobby calls."""
        return self.lobby.token

    @token.setter
    def token(self, value: str | None) -> None:
        self.lobby.token = value

    @property
    def rooms(self) -> Mapping[str, Room]:
        """The rooms this client is in, by id (read-only view)."""
        return MappingProxyType(self.connection.rooms)

    async def login_guest(self, name: str | None = None) -> str:
        """Get a guest token (POST /auth/guest), keep it for later calls, and return the player id."""
        login = await self.lobby.login_guest(name)
        self.player = login.player
        return login.player

    async def list_rooms(self, type: str, meta: Mapping[str, str] | None = None) -> list[RoomInfo]:
        """The public rooms of a room type, optionally filtered by meta values."""
        return await self.lobby.list_rooms(type, meta)

    async def create(
        self,
        type: str,
        *,
        options: Mapping[str, JSONValue] | None = None,
        meta: Mapping[str, JSONValue] | None = None,
        private: bool = False,
    ) -> Room:
        """Create a room, then join it; returns it joined."""
        return await self.join_seat(
            await self.lobby.create(type, options=options, meta=meta, private=private)
        )

    async def join_or_create(
        self,
        type: str,
        *,
        options: Mapping[str, JSONValue] | None = None,
        filters: Mapping[str, JSONValue] | None = None,
        meta: Mapping[str, JSONValue] | None = None,
    ) -> Room:
        """Join a public room of this type matching `filters`, or create one; returns it joined."""
        seat = await self.lobby.join_or_create(type, filters=filters, options=options, meta=meta)
        return await self.join_seat(seat)

    async def join(self, room_id: str) -> Room:
        """Reserve a seat in a known room (POST /rooms/{id}/seats) and join it."""
        return await self.join_seat(await self.lobby.reserve_seat(room_id))

    async def join_seat(self, seat: Seat) -> Room:
        """Join with a seat the lobby gave (e.g. from a custom lobby route); returns the room joined.

        Raises:
            UnauthorizedError: the seat is invalid or expired: get a new one.
            ForbiddenError: the seat is for another player or room, or the game refused the join.
            RoomNotFoundError, RoomFullError, RoomClosedError: the room cannot take this player.
            RequestTimeoutError: no answer within join_timeout_s.
            ConnectionLostError: no server could be reached.
            ClientError: this client is already in that room.
        """
        if seat.room in self.connection.rooms:
            raise ClientError(f"this client is already in room {seat.room}", room=seat.room)
        self.connection.ws_path = seat.ws
        room = Room(
            self.connection,
            seat,
            max_pending=self._max_pending,
            max_buffered_events=self._max_buffered_events,
        )
        self.connection.attach(room)
        try:
            async with asyncio.timeout(self._join_timeout_s):
                await room.wait_joined()
        except TimeoutError as exc:
            self._abandon(room)
            raise RequestTimeoutError(
                f"no answer to join within {self._join_timeout_s} s", room=seat.room
            ) from exc
        except BaseException:
            self._abandon(room)
            raise
        self.player = room.player
        return room

    def _abandon(self, room: Room) -> None:
        """A join the caller gave up on: leave if the server may have let us in, and forget the room."""
        if room.state != "left":
            self.connection.send_frame(Leave(room=room.id))
            room.on_lost(ClientError("the join was abandoned", room=room.id))

    async def aclose(self) -> None:
        """Close the connection and the HTTP client. Rooms are not left (the server's grace applies)."""
        try:
            await self.connection.aclose()
        finally:
            await self.lobby.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
