"""serve_app: run an App on a free 127.0.0.1 port inside the current event loop, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from roomwire.app import App
from roomwire.backends.base import Backend
from roomwire.gateway.server import bind_socket, uvicorn_config


@asynccontextmanager
async def serve_app(
    app: App, backend: Backend | None = None, *, run_worker: bool = True, startup_timeout_s: float = 10.0
) -> AsyncIterator[str]:
    """Serve `app` (embedded backend unless given) and yield its base URL; stops it on exit."""
    gateway = app.gateway or app.build_gateway(backend, run_worker=run_worker)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn_config(gateway, "127.0.0.1", port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="roomwire-test-server")
    try:
        async with asyncio.timeout(startup_timeout_s):
            while not server.started:
                if task.done():
                    task.result()  # raises the startup error
                    raise RuntimeError("the server stopped during startup")
                await asyncio.sleep(0.01)  # uvicorn exposes no startup event; poll its flag
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(10):
                await task
        finally:
            sock.close()
