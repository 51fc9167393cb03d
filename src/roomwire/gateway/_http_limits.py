"""ASGI layer around the lobby's HTTP routes: bounded request bodies, read within a deadline.

Promise 7 at the HTTP edge. Without it a route that reads its body (`await request.body()`)
holds whatever the client sends, and a client that sends it slowly holds the connection for
as long as it likes. This layer sits between the server and the Starlette app, so it bounds
roomwire's own lobby routes and the app's `@app.route` routes alike:

* a `Content-Length` over the limit is answered 413 before one byte of the body is read;
* a body without a length (chunked) is counted as it arrives: the chunk that crosses the limit
  makes the route's read raise `RequestTooLargeError` (413), so at most limit + one chunk of
  the server's read buffer is ever held;
* the whole body must arrive within `body_timeout_s` of the request head, else the read
  raises `RequestTimeoutError` (408). Once it has, receive() is passed through untimed (a
  streaming response waits in it for the client's disconnect).

Both answers carry the lobby's error body and `Connection: close`, so the server stops reading
the rest of an oversized or slow body.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from roomwire.errors import RequestTimeoutError, RequestTooLargeError, RoomwireError
from roomwire.gateway.errors import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class BodyLimits:
    """Bounds the size of every HTTP request body and the time to receive it (see module doc)."""

    def __init__(self, app: Any, *, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            # Refused on the header alone: the body is never read.
            await error_response(_too_large(limit))(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        received = 0
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # After the body, receive() only waits for the disconnect (a streaming response
                # listens for it as long as it streams): no deadline.
                return await receive()  # type: ignore[no-any-return]  # the server's receive
            try:
                async with asyncio.timeout_at(deadline):
                    message: Message = await receive()
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.body_timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, bounded_receive, send)


async def limit_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: the lobby's JSON error for a body refused by `BodyLimits`."""
    assert isinstance(exc, RoomwireError)  # registered for RequestTooLargeError / RequestTimeoutError
    return error_response(exc)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"request body over the limit of {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None
