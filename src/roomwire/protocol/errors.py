"""The root of roomwire's exception tree and the protocol's own error (re-exported by roomwire.errors)."""

from __future__ import annotations

from typing import ClassVar

from roomwire.protocol.codes import ErrorCode


class RoomwireError(Exception):
    """Base of every roomwire exception."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL


class ProtocolError(RoomwireError):
    """A frame is malformed, too large, or not allowed in the connection's current state."""

    code = ErrorCode.BAD_FRAME

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.BAD_FRAME) -> None:
        super().__init__(message)
        self.error_code = code
