"""Every exception roomwire raises, in one tree.

    RoomwireError
    ├─ ProtocolError      malformed, oversized or out-of-order frame (the peer's fault)
    │                     → RequestTooLargeError, RequestTimeoutError (lobby HTTP bodies)
    ├─ ValidationError    payload does not match the handler's schema
    ├─ RejectedError      raised by game code: refuse this input; the room goes on
    ├─ AuthError          → UnauthorizedError, ForbiddenError
    ├─ RateLimitedError   a player exceeded the room type's rate limit
    ├─ RoomError          → RoomNotFoundError, RoomFullError, RoomClosedError, NotJoinedError,
    │                       UnknownMessageTypeError, MessageTooLargeError, HistoryGoneError
    ├─ BackendError       → BackendUnavailableError, StaleLeaseError, CommitConflictError
    ├─ SetupError         API misuse: duplicate handler, registration after start, bad policy
    └─ DeployError        a deploy or an app bundle is refused: cannot pack, fails to import,
                          missing packages, unsigned or tampered (runtime/bundle.py)

Wire-visible errors carry `code`; `roomwire.gateway` turns them into error frames in one place.
"""

from __future__ import annotations

from roomwire.protocol.codes import ErrorCode
from roomwire.protocol.errors import ProtocolError, RoomwireError

__all__ = [
    "AuthError",
    "BackendError",
    "BackendUnavailableError",
    "CommitConflictError",
    "DeployError",
    "ForbiddenError",
    "HistoryGoneError",
    "MessageTooLargeError",
    "NotJoinedError",
    "ProtocolError",
    "RateLimitedError",
    "RejectedError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RoomClosedError",
    "RoomError",
    "RoomFullError",
    "RoomNotFoundError",
    "RoomwireError",
    "SetupError",
    "StaleLeaseError",
    "UnauthorizedError",
    "UnknownMessageTypeError",
    "ValidationError",
]


class ValidationError(RoomwireError):
    """A message's data does not match the schema its handler declares."""

    code = ErrorCode.INVALID_MESSAGE


class RejectedError(RoomwireError):
    """Raise from game code to refuse the current input; the sender gets the message."""

    code = ErrorCode.REJECTED


class AuthError(RoomwireError):
    """Authentication or authorization failed."""

    code = ErrorCode.UNAUTHORIZED


class UnauthorizedError(AuthError):
    """No identity, or the token or seat is invalid or expired."""

    code = ErrorCode.UNAUTHORIZED


class ForbiddenError(AuthError):
    """The identity is known but may not do this."""

    code = ErrorCode.FORBIDDEN


class RateLimitedError(RoomwireError):
    """The player sent more messages than the room type's rate limit allows (or another limit:
    joins and leaves per connection, rooms created per player, connections per player)."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # when known: HTTP answers carry it as Retry-After


class RequestTooLargeError(ProtocolError):
    """A lobby request body (or a room's meta) is larger than the server accepts (HTTP 413)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.FRAME_TOO_LARGE)


class RequestTimeoutError(ProtocolError):
    """A lobby request body did not arrive within the server's body timeout (HTTP 408)."""


class RoomError(RoomwireError):
    """A request about a room that cannot be served."""


class RoomNotFoundError(RoomError):
    """No room with that id (never created, or ended)."""

    code = ErrorCode.ROOM_NOT_FOUND


class RoomFullError(RoomError):
    """The room has max_players players or reserved seats."""

    code = ErrorCode.ROOM_FULL


class RoomClosedError(RoomError):
    """The room has ended and takes no more input."""

    code = ErrorCode.ROOM_CLOSED


class NotJoinedError(RoomError):
    """A message or leave for a room this connection has not joined."""

    code = ErrorCode.NOT_JOINED


class UnknownMessageTypeError(RoomError):
    """The room type has no handler for this message type."""

    code = ErrorCode.UNKNOWN_TYPE


class MessageTooLargeError(RoomError):
    """A message's frame is larger than the room type's max_message_bytes."""

    code = ErrorCode.MESSAGE_TOO_LARGE


class HistoryGoneError(RoomError):
    """A resume asked for events older than the room's kept history."""

    code = ErrorCode.HISTORY_GONE


class BackendError(RoomwireError):
    """The engine behind a backend failed or refused an operation."""


class BackendUnavailableError(BackendError):
    """The engine cannot be reached; retry later (a message may have been applied: resend it
    with the same client id, which makes the retry safe)."""

    code = ErrorCode.UNAVAILABLE


class StaleLeaseError(BackendError):
    """Promise 4: a commit or renewal with an epoch that is no longer the room's lease epoch."""


class CommitConflictError(BackendError):
    """A commit did not continue the journal where the last one ended (wrong seq or offset)."""


class SetupError(RoomwireError):
    """The app was declared wrongly: duplicate handler or route, bad policy, change after start."""


class DeployError(RoomwireError):
    """A deploy or an app bundle is refused; the message names what to fix (nothing was changed)."""
