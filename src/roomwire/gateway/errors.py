"""The one place where exceptions become wire errors: error frames and HTTP error responses."""

from __future__ import annotations

import logging
import math
import secrets

from starlette.responses import JSONResponse

from roomwire.errors import (
    AuthError,
    BackendUnavailableError,
    ForbiddenError,
    RateLimitedError,
    RequestTimeoutError,
    RequestTooLargeError,
    RoomClosedError,
    RoomFullError,
    RoomNotFoundError,
    RoomwireError,
    UnauthorizedError,
)
from roomwire.protocol.codes import ErrorCode
from roomwire.protocol.errors import ProtocolError
from roomwire.protocol.frames import Error

log = logging.getLogger("roomwire.gateway")

_HTTP_STATUS: dict[type[RoomwireError], int] = {
    UnauthorizedError: 401,
    ForbiddenError: 403,
    AuthError: 401,
    RoomNotFoundError: 404,
    RoomFullError: 409,
    RoomClosedError: 409,
    RateLimitedError: 429,
    RequestTooLargeError: 413,
    RequestTimeoutError: 408,
    BackendUnavailableError: 503,
}


def error_code(exc: BaseException) -> tuple[ErrorCode, str, str | None]:
    """Code, client-safe message and log reference for an exception (internal errors are logged)."""
    if isinstance(exc, ProtocolError):
        return exc.error_code, str(exc), None
    if isinstance(exc, RoomwireError) and exc.code is not ErrorCode.INTERNAL:
        return exc.code, str(exc), None
    ref = secrets.token_hex(6)
    log.error("internal error [ref %s]", ref, exc_info=exc, extra={"ref": ref})
    return ErrorCode.INTERNAL, f"internal error (ref {ref})", ref


def error_frame(exc: BaseException, room: str | None = None) -> Error:
    """The `error` frame for an exception."""
    code, message, ref = error_code(exc)
    return Error(code, message, room, ref)


def error_response(exc: BaseException, *, close: bool = False) -> JSONResponse:
    """The lobby's JSON error response for an exception; `close` (implied for a refused body)
    ends the HTTP connection after it."""
    code, message, _ = error_code(exc)
    status = 500 if code is ErrorCode.INTERNAL else 400
    for cls in type(exc).__mro__:
        if cls in _HTTP_STATUS:
            status = _HTTP_STATUS[cls]
            break
    headers: dict[str, str] = {}
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is not None:
        headers["retry-after"] = str(max(1, math.ceil(retry_after_s)))
    if close or isinstance(exc, (RequestTooLargeError, RequestTimeoutError)):
        # The rest of a refused body may still be on its way: the server stops reading it.
        headers["connection"] = "close"
    return JSONResponse(
        {"error": {"code": code.value, "message": message}}, status_code=status, headers=headers
    )
