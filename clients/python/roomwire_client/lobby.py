"""The lobby HTTP API (docs/protocol.md, "Lobby HTTP API") over httpx, with failover between servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from roomwire.protocol.frames import JSONValue
from roomwire_client._resume import Endpoints
from roomwire_client.errors import ClientError, ConnectionLostError, error_for

__all__ = ["GuestLogin", "Lobby", "RoomInfo", "Seat"]

T = TypeVar("T")


class Seat(msgspec.Struct, frozen=True):
    """A seat reserved by the lobby: present `seat` in a `join` frame on the WebSocket at `ws`."""

    room: str
    type: str
    player: str
    seat: str
    ws: str = "/ws"
    created: bool = False  # join-or-create only: a new room was made


class RoomInfo(msgspec.Struct, frozen=True):
    """A public room as listed by `GET /rooms`."""

    id: str
    type: str
    players: int
    max_players: int
    meta: dict[str, JSONValue] = {}
    created_at: float | str | None = None


class GuestLogin(msgspec.Struct, frozen=True):
    """Answer to `POST /auth/guest`."""

    player: str
    token: str


class _RoomList(msgspec.Struct, frozen=True):
    rooms: list[RoomInfo]


class _ErrorBody(msgspec.Struct, frozen=True):
    code: str | None = None
    message: str = ""


class _ErrorAnswer(msgspec.Struct, frozen=True):
    error: _ErrorBody


class Lobby:
    """Typed calls to the lobby; transport failures before a request is sent fail over to the next server.

    A POST is retried on another server only when it could not be sent at all (connect error), so a
    room is never created twice; a GET is retried on any transport error.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        token: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.endpoints = endpoints
        self.token = token
        self._owns_http = http is None
        # trust_env=False: a game client talks to its servers directly, not through env proxies.
        self._http = http or httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def aclose(self) -> None:
        """Close the HTTP client if this Lobby created it."""
        if self._owns_http:
            await self._http.aclose()

    async def login_guest(self, name: str | None = None) -> GuestLogin:
        """POST /auth/guest: a token for a new guest player (stored in `self.token`)."""
        body: dict[str, Any] = {} if name is None else {"name": name}
        login = await self._call("POST", "/auth/guest", GuestLogin, json=body, auth=False)
        self.token = login.token
        return login

    async def list_rooms(self, type: str, meta: Mapping[str, str] | None = None) -> list[RoomInfo]:
        """GET /rooms: the public rooms of a type, optionally filtered by meta values."""
        params = {"type": type, **{f"meta.{k}": str(v) for k, v in (meta or {}).items()}}
        return (await self._call("GET", "/rooms", _RoomList, params=params)).rooms

    async def create(
        self,
        type: str,
        *,
        options: Mapping[str, JSONValue] | None = None,
        meta: Mapping[str, JSONValue] | None = None,
        private: bool = False,
    ) -> Seat:
        """POST /rooms: create a room and reserve a seat in it."""
        body: dict[str, Any] = {"type": type, "private": private}
        if options is not None:
            body["options"] = dict(options)
        if meta is not None:
            body["meta"] = dict(meta)
        return await self._call("POST", "/rooms", Seat, json=body)

    async def join_or_create(
        self,
        type: str,
        *,
        filters: Mapping[str, JSONValue] | None = None,
        options: Mapping[str, JSONValue] | None = None,
        meta: Mapping[str, JSONValue] | None = None,
    ) -> Seat:
        """POST /rooms/join-or-create: a seat in a matching public room with room, or in a new one."""
        body: dict[str, Any] = {"type": type}
        for key, value in (("filters", filters), ("options", options), ("meta", meta)):
            if value is not None:
                body[key] = dict(value)
        return await self._call("POST", "/rooms/join-or-create", Seat, json=body)

    async def reserve_seat(self, room_id: str) -> Seat:
        """POST /rooms/{room_id}/seats: a seat in a known room."""
        return await self._call("POST", f"/rooms/{room_id}/seats", Seat)

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[T],
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> T:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        last_error: Exception | None = None
        for base in self.endpoints.rotation():
            try:
                response = await self._http.request(
                    method, base + path, json=json, params=params, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc  # never reached the server: safe to try the next one
                continue
            except httpx.TransportError as exc:
                if method != "GET":
                    raise ConnectionLostError(f"{method} {path} to {base} failed: {exc}") from exc
                last_error = exc
                continue
            return _parse(response, answer)
        raise ConnectionLostError(f"no server reachable for {method} {path}: {last_error}") from last_error


def _parse(response: httpx.Response, answer: type[T]) -> T:
    if response.status_code >= 400:
        try:
            body = msgspec.json.decode(response.content, type=_ErrorAnswer).error
        except msgspec.MsgspecError:
            request = response.request
            text = response.text[:200] or response.reason_phrase
            body = _ErrorBody(
                message=f"{request.method} {request.url.path}: HTTP {response.status_code} {text}"
            )
        raise error_for(body.code, body.message, status=response.status_code)
    try:
        return msgspec.json.decode(response.content, type=answer)
    except msgspec.MsgspecError as exc:
        raise ClientError(
            f"unexpected answer to {response.request.method} {response.request.url.path}: {exc}",
            status=response.status_code,
        ) from exc
