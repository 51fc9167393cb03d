"""Built-in lobby routes: guest login, list rooms, create, join-or-create, seats for a room."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from roomwire.backends.base import Backend
from roomwire.backends.records import CreateInput, RoomRecord
from roomwire.errors import (
    ForbiddenError,
    ProtocolError,
    RequestTooLargeError,
    RoomFullError,
    RoomNotFoundError,
    RoomwireError,
    UnauthorizedError,
)
from roomwire.gateway._limits import CreationLimiter
from roomwire.gateway.auth import Identity, TokenSigner
from roomwire.gateway.errors import error_response
from roomwire.protocol.values import check_json_value
from roomwire.runtime.bans import ban_key
from roomwire.runtime.roomtype import RoomType
from roomwire.runtime.versions import CurrentVersion

Authenticator = Callable[[Request], Awaitable[Identity | None]]
WS_PATH = "/ws"
_T = TypeVar("_T")


class _CreateBody(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    options: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    private: bool = False


class _JoinOrCreateBody(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    filters: dict[str, Any] = {}
    options: dict[str, Any] = {}
    meta: dict[str, Any] = {}


class _GuestBody(msgspec.Struct):
    name: str | None = None


class Lobby:
    """The lobby's HTTP endpoints over one backend."""

    def __init__(
        self,
        backend: Backend,
        room_types: Mapping[str, RoomType],
        signer: TokenSigner,
        authenticate: Authenticator,
        *,
        guests: bool,
        code_version: str,
        max_meta_bytes: int | None = None,
        rooms_per_player_per_min: int | None = None,
    ) -> None:
        self.backend = backend
        self.room_types = room_types
        self.signer = signer
        self.authenticate = authenticate
        self.guests = guests
        self.code_version = code_version
        self.max_meta_bytes = max_meta_bytes
        self.creations = CreationLimiter(rooms_per_player_per_min)
        self.current = CurrentVersion(backend)

    def routes(self) -> list[Route]:
        """Starlette routes of the lobby."""
        routes = [
            Route("/rooms", self._guard(self.list_rooms), methods=["GET"]),
            Route("/rooms", self._guard(self.create), methods=["POST"]),
            Route("/rooms/join-or-create", self._guard(self.join_or_create), methods=["POST"]),
            Route("/rooms/{room_id}/seats", self._guard(self.seat), methods=["POST"]),
        ]
        if self.guests:
            routes.append(Route("/auth/guest", self._guard(self.guest), methods=["POST"]))
        return routes

    def _guard(
        self, fn: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except RoomwireError as exc:
                return error_response(exc)
            except Exception as exc:
                # A bug, often the app's (an authenticator returning claims no codec carries):
                # logged with a ref by error_response, answered 500 `internal` in the documented
                # JSON body (protocol section 2), not Starlette's plain text.
                return error_response(exc)

        endpoint.__name__ = fn.__name__
        return endpoint

    async def _identity(self, request: Request) -> Identity:
        identity = await self.authenticate(request)
        if identity is None:
            raise UnauthorizedError("sign in first: send Authorization: Bearer <token>")
        return identity

    async def guest(self, request: Request) -> Response:
        """POST /auth/guest: a token for a new guest player."""
        body = await _body(request, _GuestBody, allow_empty=True)
        player = f"g-{secrets.token_hex(6)}"
        name = (body.name or player)[:64]
        token = self.signer.issue_token(player, {"name": name, "guest": True})
        return JSONResponse({"player": player, "token": token})

    async def list_rooms(self, request: Request) -> Response:
        """GET /rooms?type=T&meta.K=V: public rooms, oldest first."""
        await self._identity(request)
        room_type = request.query_params.get("type")
        filters = {k[5:]: v for k, v in request.query_params.items() if k.startswith("meta.")}
        records = await self.backend.list_rooms(room_type)
        rooms = [
            _public(r)
            for r in records
            if not r.private and all(str(r.meta.get(k)) == v for k, v in filters.items())
        ]
        return JSONResponse({"rooms": rooms, "types": _counts(records)})

    async def create(self, request: Request) -> Response:
        """POST /rooms: create a room and hold a seat in it for the caller."""
        identity = await self._identity(request)
        body = await _body(request, _CreateBody)
        self._check_meta(body.meta)
        self.creations.take(identity.player_id)
        record = await self._create_room(body.type, body.options, body.meta, body.private)
        return JSONResponse(await self._seat(record, identity), status_code=201)

    async def join_or_create(self, request: Request) -> Response:
        """POST /rooms/join-or-create: a seat in the oldest matching public room with space, or a new one."""
        identity = await self._identity(request)
        body = await _body(request, _JoinOrCreateBody)
        self._room_type(body.type)
        meta = {**body.filters, **body.meta}
        self._check_meta(meta)
        for record in await self.backend.list_rooms(body.type):
            if record.private or record.players + record.reserved >= record.max_players:
                continue
            if any(record.meta.get(k) != v for k, v in body.filters.items()):
                continue
            try:
                answer = await self._seat(record, identity)
            except (RoomFullError, RoomNotFoundError, ForbiddenError):
                continue  # filled or ended since it was listed, or banned from it: try the next one
            return JSONResponse({**answer, "created": False})
        self.creations.take(identity.player_id)
        record = await self._create_room(body.type, body.options, meta, False)
        return JSONResponse({**await self._seat(record, identity), "created": True})

    async def seat(self, request: Request) -> Response:
        """POST /rooms/{room_id}/seats: a seat in one given room."""
        identity = await self._identity(request)
        room_id = request.path_params["room_id"]
        record = await self.backend.get_room(room_id)
        if record is None:
            raise RoomNotFoundError(f"no room {room_id!r}")
        return JSONResponse(await self._seat(record, identity))

    def _check_meta(self, meta: dict[str, Any]) -> None:
        """Refuse meta over the limit: every `GET /rooms` answer carries it (promise 7)."""
        limit = self.max_meta_bytes
        if limit is not None and meta:
            size = len(msgspec.json.encode(meta))
            if size > limit:
                raise RequestTooLargeError(
                    f"room meta of {size} bytes (as JSON) is over the limit of {limit}"
                )

    def _room_type(self, name: str) -> RoomType:
        room_type = self.room_types.get(name)
        if room_type is None:
            raise RoomNotFoundError(
                f"no room type {name!r}; known types: {', '.join(sorted(self.room_types))}"
            )
        return room_type

    async def _create_room(
        self, type_name: str, options: dict[str, Any], meta: dict[str, Any], private: bool
    ) -> RoomRecord:
        room_type = self._room_type(type_name)
        # Options go into the room's first input and meta into its record: both are stored by
        # the engine (MessagePack) and meta is listed to every client, so neither may hold what
        # a codec cannot carry (a JSON integer of 2^64 or more); a ProtocolError is a 400.
        check_json_value(options, "options")
        check_json_value(meta, "meta")
        # Promise 5: a new room is pinned to the deployed current version (`roomwire deploy`),
        # else to the code serving this lobby; workers run only rooms of their own version.
        version = await self.current.get() or self.code_version
        now = time.time()
        record = RoomRecord(
            id=secrets.token_urlsafe(9),
            type=type_name,
            max_players=room_type.policy.max_players,
            meta=meta,
            private=private,
            created_at=now,
            code_version=version,
        )
        await self.backend.create_room(record, CreateInput(options, now))
        return record

    async def _seat(self, record: RoomRecord, identity: Identity) -> dict[str, Any]:
        policy = self._room_type(record.type).policy
        if await self.backend.kv_get(ban_key(record.id, identity.player_id)) is not None:
            raise ForbiddenError(f"you were banned from room {record.id!r}")
        if not await self.backend.reserve_seat(record.id, identity.player_id, policy.seat_ttl_s):
            raise RoomFullError(f"room {record.id!r} is full")
        seat = self.signer.issue_seat(record.id, identity.player_id, identity.claims, policy.seat_ttl_s)
        return {
            "room": record.id,
            "type": record.type,
            "player": identity.player_id,
            "seat": seat,
            "ws": WS_PATH,
        }


class LobbyData:
    """What lobby routes may read and write: the public room list and JSON values by key."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def list_rooms(self, room_type: str | None = None) -> list[dict[str, Any]]:
        """Public rooms (of one type when given), as `GET /rooms` lists them."""
        return [_public(r) for r in await self._backend.list_rooms(room_type) if not r.private]

    async def player_counts(self) -> dict[str, dict[str, int]]:
        """Per room type: rooms and players in them, private rooms included (`GET /rooms` `types`)."""
        return _counts(await self._backend.list_rooms(None))

    async def get(self, key: str) -> Any:
        """The JSON value stored under key, or None."""
        raw = await self._backend.kv_get(_KV_PREFIX + key)
        return None if raw is None else msgspec.json.decode(raw)

    async def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        """Store a JSON value under key, expiring after ttl_s seconds when given."""
        await self._backend.kv_set(_KV_PREFIX + key, msgspec.json.encode(value), ttl_s)

    async def delete(self, key: str) -> None:
        """Remove key."""
        await self._backend.kv_delete(_KV_PREFIX + key)


_KV_PREFIX = "app:"


def _counts(records: list[RoomRecord]) -> dict[str, dict[str, int]]:
    """Presence per room type (issue #12): how many rooms and players, private rooms counted."""
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        entry = counts.setdefault(record.type, {"rooms": 0, "players": 0})
        entry["rooms"] += 1
        entry["players"] += record.players
    return counts


def _public(record: RoomRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": record.type,
        "players": record.players,
        "max_players": record.max_players,
        "meta": record.meta,
        "created_at": record.created_at,
    }


async def _body(request: Request, schema: type[_T], *, allow_empty: bool = False) -> _T:
    raw = await request.body()
    if not raw and allow_empty:
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ProtocolError(f"invalid request body: {exc}") from exc
    except RecursionError as exc:  # msgspec's nesting guard
        raise ProtocolError("invalid request body: nested too deeply") from exc


def bearer_authenticator(signer: TokenSigner) -> Authenticator:
    """The default identity check: `Authorization: Bearer <token from app.issue_token>`."""

    async def authenticate(request: Request) -> Identity | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return signer.verify_token(token.strip())

    return authenticate
