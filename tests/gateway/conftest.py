"""Fixtures for end-to-end gateway tests: a real server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from gateway_harness import FRAME_TIMEOUT_S, Server, make_app

from roomwire.testing import serve_app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """The test game served on a free 127.0.0.1 port, with the embedded backend."""
    app = make_app()
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT_S) as http:
        srv = Server(url, app, http)
        try:
            yield srv
        finally:
            for client in srv.clients:
                await client.ws.close()
