"""Stable error and close codes shared by the server and every client."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """Error codes carried by `error` and `reject` frames; stable across versions."""

    BAD_FRAME = "bad_frame"  # not valid JSON/MessagePack, or not a known frame shape
    FRAME_TOO_LARGE = "frame_too_large"  # frame exceeds the connection's max_frame_bytes
    NOT_READY = "not_ready"  # a frame other than `hello` before the handshake
    UNSUPPORTED_VERSION = "unsupported_version"  # `hello.v` the server does not speak
    UNAUTHORIZED = "unauthorized"  # missing, invalid or expired token / seat
    FORBIDDEN = "forbidden"  # valid identity, but not allowed (another player's seat, refused join)
    ROOM_NOT_FOUND = "room_not_found"
    ROOM_FULL = "room_full"
    ROOM_CLOSED = "room_closed"  # the room has ended
    NOT_JOINED = "not_joined"  # message or leave for a room this connection has not joined
    UNKNOWN_TYPE = "unknown_type"  # no handler for the message type
    INVALID_MESSAGE = "invalid_message"  # message data does not match the handler's schema
    MESSAGE_TOO_LARGE = "message_too_large"  # message data exceeds the room type's max_message_bytes
    REJECTED = "rejected"  # game code refused the input (RejectedError)
    STEP_TIMEOUT = "step_timeout"  # a handler did not finish within step_timeout_s; rolled back
    RATE_LIMITED = "rate_limited"  # the player exceeded the room type's rate limit
    REPLACED = "replaced"  # the message's connection was replaced by a newer join of the same player
    ID_EXPIRED = "id_expired"  # the room no longer knows this message id's outcome; not applied
    HISTORY_GONE = "history_gone"  # resume asked for events older than the kept history
    UNAVAILABLE = "unavailable"  # the engine behind the server is unreachable; resend with the same id
    INTERNAL = "internal"  # a server-side bug; the detail is only in the server log


class CloseCode(IntEnum):
    """WebSocket close codes the server uses, with the reason given in the close frame."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down: reconnect elsewhere and resume
    INVALID_PAYLOAD = 1007  # a text frame that is not UTF-8
    POLICY = 1008  # Origin not allowed
    TOO_BIG = 1009  # frame over max_frame_bytes
    INTERNAL = 1011
    SERVICE_RESTART = 1012  # this server's presence lapsed (stalled or cut off): reconnect and resume
    PROTOCOL = 4000  # repeated or fatal protocol violations
    UNAUTHORIZED = 4001
    SLOW_CONSUMER = 4002  # the connection's send queue overflowed: reconnect and resume
    HEARTBEAT_TIMEOUT = 4003  # no frame from the client within the heartbeat window
    FLOODING = 4004  # far over the rate limit
    HANDSHAKE_TIMEOUT = 4005  # no `hello` within the handshake window
