"""uvicorn's httptools protocol with bounds before the request reaches the app (promise 7).

uvicorn bounds neither the size of a request head nor the time to send it: a socket that
trickles `GET /ws HTTP/1.1` one byte a second, or that connects and sends nothing, stays open
for ever (file descriptors run out long before memory), and a 16 MiB header is accepted. Its
keep-alive timer runs only between requests. This subclass adds, per connection:

* a head deadline: the request line and headers must be complete within `head_timeout_s` of
  the connection opening (or of the first byte of a later request on a kept-alive
  connection), else the server answers 408 and closes;
* a head size: more than `max_head_bytes` of request line and headers is answered 431 and
  closed, counted as bytes arrive (at most one read of the socket is held beyond the limit);
* a body deadline: a body still arriving `body_timeout_s` (plus a second, so that the ASGI
  layer's 408 wins while a route is reading) after the head is cut off. It matters for bodies
  a route never reads, which uvicorn would otherwise drain for as long as they trickle.

The WebSocket upgrade passes the same head checks; after the upgrade the gateway's handshake
timeout (`hello`) takes over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from roomwire.gateway._limits import LogBudget

BODY_GRACE_S = 1.0  # the ASGI layer's 408 (gateway/_http_limits.py) comes first


class _HeadTooLargeError(Exception):
    """Raised inside a parser callback to stop parsing a head over the limit."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with head and body deadlines and a head size limit (see module doc)."""

    head_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_head_bytes: int = 32 * 1024
    refusals: LogBudget = LogBudget(logging.getLogger("roomwire.gateway"))  # one per server: see below

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0  # received while the head is incomplete (bounds memory)
        self._head_size = 0  # of the parsed request line and headers (exact)
        self._refusal: tuple[int, str] | None = None

    # --- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # answered and closing: the rest is not parsed
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes and self._refusal is None:
            self._refuse(431, f"request head over the limit of {self.max_head_bytes} bytes")

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol owns the transport from here
        super().handle_websocket_upgrade()

    # --- parser callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        if self._timer is None:  # a later request on a kept-alive connection
            self._arm(self.head_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._arm(self.body_timeout_s + BODY_GRACE_S, self._body_timed_out)

    def on_message_complete(self) -> None:
        if not self._in_head:
            self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        refusal = self._refusal
        if refusal is None:
            super().send_400_response(msg)
            return
        self._refusal = None
        self._refuse(*refusal)

    # --- bounds ---------------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_head_bytes:
            # uvicorn answers a callback's exception with send_400_response, which answers this.
            self._refusal = (431, f"request head over the limit of {self.max_head_bytes} bytes")
            raise _HeadTooLargeError

    def _arm(self, delay_s: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay_s, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        self._refuse(408, f"request head not received within {self.head_timeout_s:g} s")

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self._refuse(408, f"request body not received within {self.body_timeout_s:g} s")
        elif not self.transport.is_closing():
            self.transport.close()  # answered, but the body still trickles in: stop reading it

    def _refuse(self, status: int, message: str) -> None:
        """Answer with the lobby's error body and close (before any response was started)."""
        self._refusal = (status, message)
        self._disarm()
        if self.transport.is_closing():
            return
        self.refusals.info("HTTP %d for %s: %s", status, self.client or "a client", message)
        body = json.dumps({"error": {"code": "bad_frame", "message": message}}).encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's send() becomes a no-op, receive() a disconnect
            self.cycle.message_event.set()


def bounded_http_protocol(*, head_timeout_s: float, body_timeout_s: float, max_head_bytes: int) -> type:
    """A BoundedHttpProtocol class with these limits, for uvicorn.Config(http=...)."""
    limits = {"head_timeout_s": head_timeout_s, "body_timeout_s": body_timeout_s}
    refusals = LogBudget(logging.getLogger("roomwire.gateway"))  # shared by this server's connections
    attributes = {**limits, "max_head_bytes": max_head_bytes, "refusals": refusals}
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), attributes)


__all__ = ["BoundedHttpProtocol", "bounded_http_protocol"]
