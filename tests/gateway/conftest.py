"""Fixtures for end-to-end gateway tests: a real server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gateway_harness import Server, make_app, serving

from roomwire.testing import serve_app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """The test game served on a free 127.0.0.1 port, with the embedded backend."""
    app = make_app()
    async with serve_app(app) as url, serving(url, app) as srv:
        yield srv
