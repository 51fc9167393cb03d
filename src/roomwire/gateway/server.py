"""Run a gateway with uvicorn (uvloop and httptools where available)."""

from __future__ import annotations

import importlib.util
import logging
import socket
from typing import Any

import uvicorn

from roomwire.gateway._uvicorn_http import bounded_http_protocol
from roomwire.gateway.asgi import HARD_MAX_FRAME_BYTES, GatewaySettings

# uvicorn's sans-I/O WebSocket protocol with roomwire's direct-write extension (_uvicorn_ws.py).
WS_IMPLEMENTATION = "roomwire.gateway._uvicorn_ws:RoomwireWebSocketProtocol"


def uvicorn_config(
    asgi: Any,
    host: str,
    port: int,
    *,
    log_level: str = "info",
    access_log: bool = False,
    settings: GatewaySettings | None = None,
) -> uvicorn.Config:
    """The uvicorn settings roomwire runs with: uvloop, httptools, websockets sans-I/O, 1 MiB frames.

    HTTP limits (request head size and time, body time) come from `settings`, else from
    `asgi.settings` (a Gateway or an App has them), else the defaults.
    """
    settings = settings or getattr(asgi, "settings", None) or GatewaySettings()
    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # Promise 7: uvicorn itself bounds neither the request head nor the time to send it.
        http=bounded_http_protocol(
            head_timeout_s=settings.head_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_head_bytes=settings.max_head_bytes,
        ),
        ws=WS_IMPLEMENTATION,
        ws_max_size=HARD_MAX_FRAME_BYTES,
        ws_per_message_deflate=False,  # compression costs CPU per frame and per connection memory
        # roomwire's heartbeat (clients ping; silent ones are closed) already finds dead peers;
        # uvicorn's pings would add a timer per connection.
        ws_ping_interval=None,
        lifespan="on",
        proxy_headers=False,  # roomwire uses no client address; skip the per-message middleware
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (port 0 picks a free port); raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP; without it Nagle holds small frames back ~40 ms behind delayed acks.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def quiet_access_logs() -> None:
    """Keep uvicorn's per-request logs out of the way of game logs."""
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
