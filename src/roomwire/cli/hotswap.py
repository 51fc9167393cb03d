"""HotSwap: one ASGI entry point whose gateway is replaced when the app's code changes (dev mode).

The backend outlives every gateway, so rooms keep their committed state across reloads; clients
are closed with 1012 (service restart) and resume on the new code.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable

from roomwire.app import App
from roomwire.backends.base import Backend
from roomwire.gateway.asgi import Gateway, GatewaySettings, Receive, Scope, Send, run_lifespan

log = logging.getLogger("roomwire.cli")


class HotSwap:
    """Serves the current gateway; `reload()` swaps in a gateway built from freshly loaded code."""

    def __init__(self, backend: Backend, load: Callable[[], App], secret: str | None = None) -> None:
        self.backend = backend
        self._load = load
        # One secret for every reload: seats and tokens issued before a reload stay valid.
        self._secret = secret or secrets.token_urlsafe(32)
        self.gateway: Gateway | None = None
        # The first app's connection limits: uvicorn_config reads the HTTP ones once, at start.
        self.settings: GatewaySettings | None = None
        self.metrics = False  # roomwire run --metrics: /metrics on every gateway built here

    async def start(self) -> None:
        """Open the backend and serve the app."""
        await self.backend.open()
        self.gateway = self._build(self._load())
        await self.gateway.start()

    async def reload(self) -> None:
        """Load the code again; keep the old gateway if the new code does not import."""
        app = self._load()  # raises AppLoadError: the caller reports it, the old code keeps serving
        new = self._build(app)
        old, self.gateway = self.gateway, new
        if old is not None:
            await old.aclose()  # rooms commit and release their leases; clients reconnect
        await new.start()

    async def aclose(self) -> None:
        """Stop serving and close the backend."""
        if self.gateway is not None:
            await self.gateway.aclose()
        await self.backend.aclose()

    def _build(self, app: App) -> Gateway:
        if not app.has_secret:
            app.use_secret(self._secret)
        if self.metrics and not app.settings.metrics:
            app.settings = dataclasses.replace(app.settings, metrics=True)
        gateway = app.build_gateway(self.backend, manage_backend=False)
        if gateway.worker is not None:
            # Dev reload runs every room on the newest code, whatever version it was created with.
            gateway.worker.pinned = False
        return gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self.start, self.aclose)
            return
        assert self.gateway is not None, "served before lifespan startup"
        await self.gateway(scope, receive, send)
