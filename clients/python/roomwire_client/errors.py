"""Every exception the client raises, mirroring the server's error codes.

    ClientError                    .code (wire code or None), .message, .room, .status, .ref, .msg_id
    ├─ ProtocolViolationError      bad_frame, frame_too_large, not_ready, unsupported_version
    ├─ AuthError                   → UnauthorizedError, ForbiddenError
    ├─ RoomError                   → RoomNotFoundError, RoomFullError, RoomClosedError,
    │                                HistoryGoneError, NotJoinedError, RoomLeftError
    ├─ MessageError                → InvalidMessageError, UnknownTypeError, MessageTooLargeError,
    │                                RejectedError, RateLimitedError
    ├─ UnavailableError            unavailable (the engine is down for now; resend is safe)
    ├─ InternalServerError         internal, step_timeout (.ref: quote it to the operator)
    ├─ ConnectionLostError         the server cannot be reached, or the connection could not be restored
    └─ RequestTimeoutError         no answer in time (also a TimeoutError)

`error_for(code, ...)` turns a wire code into the matching exception.
"""

from __future__ import annotations

from typing import ClassVar, Final

from roomwire.protocol import ErrorCode

__all__ = [
    "AuthError",
    "ClientError",
    "ConnectionLostError",
    "ForbiddenError",
    "HistoryGoneError",
    "InternalServerError",
    "InvalidMessageError",
    "MessageError",
    "MessageTooLargeError",
    "NotJoinedError",
    "ProtocolViolationError",
    "RateLimitedError",
    "RejectedError",
    "RequestTimeoutError",
    "RoomClosedError",
    "RoomError",
    "RoomFullError",
    "RoomLeftError",
    "RoomNotFoundError",
    "UnauthorizedError",
    "UnknownTypeError",
    "error_for",
]


class ClientError(Exception):
    """Base of every roomwire client exception; `code` is the server's error code when there is one."""

    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        room: str | None = None,
        status: int | None = None,
        ref: str | None = None,
        msg_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.room = room
        self.status = status  # HTTP status, for lobby errors
        self.ref = ref  # server log reference, for `internal`
        self.msg_id = msg_id  # the client message id a `reject` answered

    def __str__(self) -> str:
        where = f" (room {self.room})" if self.room else ""
        ref = f" [ref {self.ref}]" if self.ref else ""
        code = f"{self.code}: " if self.code else ""
        return f"{code}{self.message}{where}{ref}"


class ProtocolViolationError(ClientError):
    """The server did not understand a frame: a bug in this client or a protocol version mismatch."""

    default_code = ErrorCode.BAD_FRAME.value


class AuthError(ClientError):
    """Authentication or authorization failed."""

    default_code = ErrorCode.UNAUTHORIZED.value


class UnauthorizedError(AuthError):
    """No token, or the token or seat is invalid or expired: log in again or get a new seat."""

    default_code = ErrorCode.UNAUTHORIZED.value


class ForbiddenError(AuthError):
    """The identity is known but may not do this (e.g. the game's join hook refused; see `message`)."""

    default_code = ErrorCode.FORBIDDEN.value


class RoomError(ClientError):
    """The room cannot serve the request."""


class RoomNotFoundError(RoomError):
    """No room with that id (never created, or ended)."""

    default_code = ErrorCode.ROOM_NOT_FOUND.value


class RoomFullError(RoomError):
    """The room has no free seat."""

    default_code = ErrorCode.ROOM_FULL.value


class RoomClosedError(RoomError):
    """The room has ended and takes no more players or messages."""

    default_code = ErrorCode.ROOM_CLOSED.value


class HistoryGoneError(RoomError):
    """Events were missed across a reconnect and are no longer kept: the room view may be stale.

    Raised once from `Room.events()` / `Room.next_event()` at the gap; call them again to go on
    with the live events that follow. `missed_after` is the last seq seen before the gap.
    """

    default_code = ErrorCode.HISTORY_GONE.value

    missed_after: int | None = None


class NotJoinedError(RoomError):
    """The server does not consider this connection a member of the room."""

    default_code = ErrorCode.NOT_JOINED.value


class RoomLeftError(RoomError):
    """The room was left (`reason`: left, ended, replaced, removed); `detail` is the game's reason."""

    default_code = None

    reason: str = "left"
    detail: str | None = None


class MessageError(ClientError):
    """A message was refused; nothing of it was applied."""


class InvalidMessageError(MessageError):
    """The message data does not match the handler's schema; `message` says which field."""

    default_code = ErrorCode.INVALID_MESSAGE.value


class UnknownTypeError(MessageError):
    """The room type has no handler for this message type."""

    default_code = ErrorCode.UNKNOWN_TYPE.value


class MessageTooLargeError(MessageError):
    """The message is larger than the room's or the connection's limit."""

    default_code = ErrorCode.MESSAGE_TOO_LARGE.value


class RejectedError(MessageError):
    """The game refused the message; `message` is the game's reason."""

    default_code = ErrorCode.REJECTED.value


class RateLimitedError(MessageError):
    """The player sent more messages than the room type allows: slow down."""

    default_code = ErrorCode.RATE_LIMITED.value


class UnavailableError(ClientError):
    """The server's engine is unreachable for now; the message may have been applied. Retrying
    with the same client id is safe (a duplicate is acknowledged, not applied again)."""

    default_code = ErrorCode.UNAVAILABLE.value


class InternalServerError(ClientError):
    """A server-side bug; `ref` is the reference the operator finds in the server log."""

    default_code = ErrorCode.INTERNAL.value


class ConnectionLostError(ClientError):
    """The server cannot be reached, or the connection dropped and could not be restored.

    `close_code` and `close_reason` are the WebSocket close frame's, when there was one.
    """

    close_code: int | None = None
    close_reason: str = ""


class RequestTimeoutError(ClientError, TimeoutError):
    """No answer within the timeout; a message may still be applied later (it stays pending)."""


_BY_CODE: Final[dict[str, type[ClientError]]] = {
    ErrorCode.BAD_FRAME: ProtocolViolationError,
    ErrorCode.NOT_READY: ProtocolViolationError,
    ErrorCode.UNSUPPORTED_VERSION: ProtocolViolationError,
    ErrorCode.FRAME_TOO_LARGE: MessageTooLargeError,
    ErrorCode.UNAUTHORIZED: UnauthorizedError,
    ErrorCode.FORBIDDEN: ForbiddenError,
    ErrorCode.ROOM_NOT_FOUND: RoomNotFoundError,
    ErrorCode.ROOM_FULL: RoomFullError,
    ErrorCode.ROOM_CLOSED: RoomClosedError,
    ErrorCode.NOT_JOINED: NotJoinedError,
    # The message's connection was replaced by a newer join of the player: it is not in the room.
    ErrorCode.REPLACED: NotJoinedError,
    # The room no longer knows that id's outcome (too many skipped ids); it was not applied now.
    ErrorCode.ID_EXPIRED: MessageError,
    ErrorCode.UNKNOWN_TYPE: UnknownTypeError,
    ErrorCode.INVALID_MESSAGE: InvalidMessageError,
    ErrorCode.MESSAGE_TOO_LARGE: MessageTooLargeError,
    ErrorCode.REJECTED: RejectedError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
    ErrorCode.HISTORY_GONE: HistoryGoneError,
    ErrorCode.UNAVAILABLE: UnavailableError,
    ErrorCode.INTERNAL: InternalServerError,
    ErrorCode.STEP_TIMEOUT: InternalServerError,  # the game's handler hung; the log has the ref
}

# Used only when an HTTP error has no roomwire error body (a proxy, or a route that does not
# exist). 404 is left out on purpose: without a code it means "no such path", not "no such room".
_BY_STATUS: Final[dict[int, type[ClientError]]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    429: RateLimitedError,
    500: InternalServerError,
}


def error_for(
    code: str | None,
    message: str,
    *,
    room: str | None = None,
    status: int | None = None,
    ref: str | None = None,
    msg_id: int | None = None,
) -> ClientError:
    """The exception for a server error code (else for an HTTP status); an unknown code gives ClientError."""
    cls = _BY_CODE.get(code) if code is not None else None
    if cls is None and status is not None:
        cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ClientError
    return cls(message, code=code, room=room, status=status, ref=ref, msg_id=msg_id)
