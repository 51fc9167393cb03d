"""The arena's page works where the app is served: at `/` and mounted under a prefix.

The page is fetched over HTTP like a browser would, and so is every asset and API URL it names
(the HTML's stylesheet and script, and the URLs game.js derives from its own location).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from roomwire.gateway.server import bind_socket, uvicorn_config
from roomwire.testing import serve_app

ARENA = Path(__file__).resolve().parents[2] / "examples" / "arena"
SDK_BUILT = (ARENA.parents[1] / "clients" / "js" / "dist" / "roomwire-client.js").exists()


class _Assets(HTMLParser):
    """The URLs a page loads by itself: stylesheets, scripts, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag in ("script", "img") else found.get("href") if tag == "link" else None
        if url and not url.startswith("data:"):
            self.urls.append(url)


@pytest.fixture
def arena_module() -> Iterator[ModuleType]:
    """A fresh import of examples/arena/app.py (an App serves once)."""
    name = f"example_arena_page_{id(object())}"
    spec = importlib.util.spec_from_file_location(name, ARENA / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


@pytest.fixture
async def mounted(arena_module: ModuleType) -> AsyncIterator[str]:
    """The arena mounted at /game in a host Starlette app, as the README shows; yields the host URL."""
    game = arena_module.app

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the host app")

    host = Starlette(routes=[Route("/", home), Mount("/game", app=game)], lifespan=game.lifespan)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(host, "127.0.0.1", port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _check_page(page_url: str) -> None:
    """Fetch the page, each asset it names and each URL game.js derives; all must answer."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=True) as http:
        page = await http.get(page_url)
        assert page.status_code == 200 and "<canvas" in page.text
        parser = _Assets()
        parser.feed(page.text)
        assert len(parser.urls) >= 2, parser.urls  # style.css and game.js
        for url in parser.urls:
            asset = await http.get(urljoin(str(page.url), url))
            assert asset.status_code == 200, f"{url} -> {asset.url}: {asset.status_code}"
        script = next(u for u in parser.urls if u.endswith("game.js"))
        script_url = urljoin(str(page.url), script)
        source = (await http.get(script_url)).text
        derived = re.findall(r'new URL\("([^"]+)", BASE\)', source)
        assert "rules" in derived and "sdk/roomwire-client.js" in derived
        base = urljoin(script_url, ".")
        rules = await http.get(urljoin(base, "rules"))
        assert rules.status_code == 200 and rules.json()["room_type"] == "arena"
        guest = await http.post(urljoin(base, "auth/guest"))  # what Client(BASE) calls first
        assert guest.status_code == 200 and guest.json()["token"]
        if SDK_BUILT:
            sdk = await http.get(urljoin(base, "sdk/roomwire-client.js"))
            assert sdk.status_code == 200


def test_the_page_names_no_absolute_paths() -> None:
    for name in ("index.html", "game.js"):
        lines = (ARENA / "static" / name).read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("//"))  # code only
        absolute = re.findall(r"""(?:href|src)="/[^/"]|["'`]/(?![/*])[\w.-]""", text)
        assert not absolute, f"{name} uses absolute paths {absolute}: the page breaks under a prefix"


async def test_the_page_and_its_assets_load_at_the_root(arena_module: ModuleType) -> None:
    async with serve_app(arena_module.app) as url:
        await _check_page(url + "/")


async def test_the_page_and_its_assets_load_under_a_prefix(mounted: str) -> None:
    await _check_page(mounted + "/game/")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(mounted + "/")).text == "the host app"
        assert (await http.get(mounted + "/style.css")).status_code == 404  # nothing leaks to the host


async def test_the_prefix_without_its_trailing_slash_leads_to_the_page(mounted: str) -> None:
    async with httpx.AsyncClient(timeout=10, follow_redirects=True) as http:
        page = await http.get(mounted + "/game")
    assert page.status_code == 200 and str(page.url).endswith("/game/"), page.url
