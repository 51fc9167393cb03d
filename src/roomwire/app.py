"""App: what a game developer declares (lobby routes, room types, auth), and an ASGI application."""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend
from roomwire.errors import SetupError
from roomwire.gateway.asgi import Gateway, GatewaySettings, Receive, Scope, Send
from roomwire.gateway.auth import Identity, TokenSigner
from roomwire.gateway.lobby import LobbyData, bearer_authenticator
from roomwire.runtime.policy import RoomPolicy
from roomwire.runtime.relay import make_relay
from roomwire.runtime.roomtype import RoomType

F = TypeVar("F", bound=Callable[..., Any])
_RESERVED = ("/ws", "/rooms", "/auth/guest")
_POLICY_ALIASES = {
    "idle_timeout": "idle_timeout_s",
    "max_lifetime": "max_lifetime_s",
    "tick_rate": "tick_rate_hz",
}


class App:
    """A roomwire application: `@app.route` lobby routes, `app.room(...)` room types, auth.

    The App is itself an ASGI application (mountable in Starlette or FastAPI); `roomwire run`
    and `roomwire serve` run it with uvicorn.
    """

    def __init__(
        self,
        name: str,
        *,
        secret: str | None = None,
        guests: bool = True,
        version: str = "1",
        backend: str = "memory://",
        settings: GatewaySettings | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.backend_url = backend
        self.guests = guests
        self.settings = settings or GatewaySettings()
        # Without a configured secret each process signs with its own: fine for one process only.
        self.signer = TokenSigner(secret or secrets.token_urlsafe(32))
        self.has_secret = secret is not None
        self.room_types: dict[str, RoomType] = {}
        self._routes: list[BaseRoute] = []
        self._paths: set[tuple[str, str]] = set()
        self._authenticate: Callable[[Request], Awaitable[Identity | None]] = bearer_authenticator(
            self.signer
        )
        self._custom_auth = False
        self._gateway: Gateway | None = None
        self._start_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"App({self.name!r}, rooms={sorted(self.room_types)})"

    # --- declaration ----------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._gateway is not None:
            raise SetupError(f"cannot add {what}: the app is already serving")

    def room(self, name: str, *, sync: bool = False, **policy: Any) -> RoomType:
        """Declare a room type with its queue policy (see RoomPolicy for every option).

        With `sync=True` every client mirrors `room.state` (or the room type's `view` of it):
        after each step the change goes out as a `@patch` event (docs/protocol.md §15).
        """
        self._check_open(f"room type {name!r}")
        if name in self.room_types:
            raise SetupError(f"room type {name!r} is declared twice")
        if not name or not isinstance(name, str):
            raise SetupError(f"room type name must be a non-empty string, got {name!r}")
        for alias, field in _POLICY_ALIASES.items():  # the issue's spelling, without units
            if alias in policy:
                if field in policy:
                    raise SetupError(f"room type {name!r}: give {field} or {alias}, not both")
                policy[field] = policy.pop(alias)
        try:
            room_policy = RoomPolicy(**policy)
        except TypeError as exc:
            raise SetupError(f"room type {name!r}: {exc}") from exc
        room_type = RoomType(name, room_policy, sync=sync)
        self.room_types[name] = room_type
        return room_type

    def relay(self, name: str, *, host: bool = False, **policy: Any) -> RoomType:
        """Declare a relay room type: every client message is ordered and relayed, no server code.

        A message of type T becomes an event T with data `{"from": sender, "data": data}` for
        every player, or for the players listed in the data's `"@to"` (and the sender). With
        `host=True` the room elects a host (`room.state["host"]`, `@host` events). The policy
        options are those of `room` (docs/protocol.md §16).
        """
        room_type = self.room(name, **policy)
        make_relay(room_type, host=host)
        return room_type

    def add_route(self, path: str, fn: Callable[..., Any], methods: Sequence[str] | None = None) -> None:
        """Serve `fn(request)` (sync or async) at `path`; a dict or list result becomes JSON."""
        self._check_open(f"route {path!r}")
        methods = [m.upper() for m in (methods or ["GET"])]
        if not path.startswith("/"):
            raise SetupError(f"route path must start with '/', got {path!r}")
        if any(path == r or path.startswith(r + "/") for r in _RESERVED):
            raise SetupError(f"route {path!r} collides with roomwire's own {', '.join(_RESERVED)}")
        for method in methods:
            if (path, method) in self._paths:
                raise SetupError(f"route {method} {path} is declared twice")
            self._paths.add((path, method))
        self._routes.append(Route(path, _endpoint(fn), methods=methods, name=getattr(fn, "__name__", None)))

    def route(self, path: str, methods: Sequence[str] | None = None) -> Callable[[F], F]:
        """Decorator: `@app.route("/user/items", methods=["GET"])` ≡ `app.add_route(path, fn, methods)`."""

        def register(fn: F) -> F:
            self.add_route(path, fn, methods)
            return fn

        return register

    def static(self, path: str, directory: str) -> None:
        """Serve the files of `directory` at `path` (index.html for directories)."""
        self._check_open(f"static files at {path!r}")
        self._routes.append(
            Mount(path, app=StaticFiles(directory=directory, html=True), name=f"static:{path}")
        )

    def set_authenticator(self, fn: Callable[[Request], Any]) -> None:
        """Use `fn(request) -> Identity | None` (sync or async) to identify lobby callers."""
        self._check_open("an authenticator")
        is_async = inspect.iscoroutinefunction(fn)

        async def authenticate(request: Request) -> Identity | None:
            result = await fn(request) if is_async else fn(request)
            if result is not None and not isinstance(result, Identity):
                raise SetupError(
                    f"the authenticator must return Identity or None, got {type(result).__name__}"
                )
            return result

        self._authenticate = authenticate
        self._custom_auth = True

    def use_secret(self, secret: str) -> None:
        """Sign tokens and seats with `secret` (every process of one deployment needs the same one)."""
        self._check_open("a secret")
        self.signer = TokenSigner(secret)
        self.has_secret = True
        if not self._custom_auth:
            self._authenticate = bearer_authenticator(self.signer)

    def authenticate(self, fn: F) -> F:
        """Decorator twin of `set_authenticator`."""
        self.set_authenticator(fn)
        return fn

    def issue_token(
        self, player_id: str, claims: dict[str, Any] | None = None, ttl_s: float = 86400.0
    ) -> str:
        """A signed bearer token identifying `player_id` to the lobby (the default authenticator)."""
        return self.signer.issue_token(player_id, claims, ttl_s)

    # --- serving --------------------------------------------------------------------------------

    def build_gateway(
        self,
        backend: Backend | None = None,
        *,
        run_worker: bool = True,
        serve_clients: bool = True,
        worker_id: str | None = None,
        lease_ttl_s: float = 2.0,
        manage_backend: bool = True,
    ) -> Gateway:
        """Freeze the app and build the gateway that serves it (used by the CLI and testing)."""
        if self._gateway is not None:
            raise SetupError("the app is already serving; build one gateway per App")
        if not self.room_types:
            raise SetupError(f"app {self.name!r} declares no room types; add one with app.room(...)")
        for room_type in self.room_types.values():
            room_type.freeze()
        self._gateway = Gateway(
            backend=backend or backend_from_url(self.backend_url),
            room_types=self.room_types,
            signer=self.signer,
            authenticate=self._authenticate,
            routes=self._routes,
            guests=self.guests,
            settings=self.settings,
            run_worker=run_worker,
            serve_clients=serve_clients,
            worker_id=worker_id,
            lease_ttl_s=lease_ttl_s,
            code_version=self.version,
            manage_backend=manage_backend,
        )
        return self._gateway

    @property
    def lobby(self) -> LobbyData:
        """Room list and key-value data for lobby routes: `await app.lobby.list_rooms("arena")`."""
        if self._gateway is None:
            raise SetupError("app.lobby is available once the app is serving (inside routes)")
        return self._gateway.lobby_data

    @property
    def gateway(self) -> Gateway | None:
        """The gateway serving this app, once built."""
        return self._gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point; starts the embedded backend lazily when mounted inside another app."""
        gateway = self._gateway or self.build_gateway()
        if scope["type"] != "lifespan":
            async with self._start_lock:
                await gateway.start()
        await gateway(scope, receive, send)

    @asynccontextmanager
    async def lifespan(self, _host: Any = None) -> AsyncIterator[None]:
        """Lifespan for a host app: `FastAPI(lifespan=app.lifespan)` starts and stops roomwire with it."""
        gateway = self._gateway or self.build_gateway()
        await gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()


def _endpoint(fn: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
    is_async = inspect.iscoroutinefunction(fn)

    async def endpoint(request: Request) -> Response:
        result = await fn(request) if is_async else await run_in_threadpool(fn, request)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint
