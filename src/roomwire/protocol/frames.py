"""Wire frames: one frozen msgspec Struct per frame kind, tagged by the field `t`.

The normative description is docs/protocol.md; this module is its executable form.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

PROTOCOL_VERSION = 1

# JSON and MessagePack values a user may put in message and event data (see protocol.values,
# which the codec applies to client data: what both codecs carry alike).
JSONValue = Any

# Client ids and sequence numbers are 64-bit signed (protocol §3): 2^63 and above is refused
# at decode time, so it never reaches a room (MessagePack cannot even encode 2^64).
WireInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Frame(msgspec.Struct, frozen=True, tag_field="t", omit_defaults=True):
    """Base of every frame; `t` is the tag that names the frame kind."""


# --- client → server -------------------------------------------------------------------------


class Hello(_Frame, tag="hello", frozen=True):
    """First frame on a connection: protocol version and an optional client name."""

    v: int = PROTOCOL_VERSION
    client: str | None = None


class Join(_Frame, tag="join", frozen=True):
    """Enter a room with a seat token; `since` resumes after that room sequence number."""

    room: str
    # Optional in the frame's shape so that a join without a seat is refused for its room
    # (`unauthorized` with `room`, protocol section 6), not as a shapeless `bad_frame`.
    seat: str = ""
    since: WireInt | None = None


class Leave(_Frame, tag="leave", frozen=True):
    """Leave a room for good (the room's leave hook runs with reason `left`)."""

    room: str


class Msg(_Frame, tag="msg", frozen=True):
    """A game message; `id` (strictly increasing per player and room) makes resends idempotent."""

    room: str
    type: str
    data: JSONValue = None
    id: WireInt | None = None


class Ping(_Frame, tag="ping", frozen=True):
    """Liveness check; the server answers `pong` with the same id."""

    id: WireInt = 0


ClientFrame = Hello | Join | Leave | Msg | Ping


# --- server → client -------------------------------------------------------------------------


class Welcome(_Frame, tag="welcome", frozen=True):
    """Answer to `hello`: the negotiated version and the limits of this connection."""

    v: int
    codec: str
    heartbeat_s: float
    max_frame_bytes: int
    server: str = "roomwire"


class Joined(_Frame, tag="joined", frozen=True):
    """The join succeeded; events with seq > `seq` follow (after the replay, on resume)."""

    room: str
    player: str
    seq: int
    last_id: int
    rejoin: str
    resumed: bool = False


class Event(_Frame, tag="event", frozen=True):
    """A committed room event with its room sequence number."""

    room: str
    seq: int
    type: str
    data: JSONValue = None


class Ack(_Frame, tag="ack", frozen=True):
    """The message with this client id was applied and committed (once)."""

    room: str
    id: int
    dup: bool = False


class Reject(_Frame, tag="reject", frozen=True):
    """The message with this client id was refused; nothing of it was applied."""

    room: str
    id: int
    code: str
    message: str
    ref: str | None = None


class Left(_Frame, tag="left", frozen=True):
    """This connection is no longer in the room.

    reason: `left` (asked to), `ended` (the room ended; `detail` is the game's reason),
    `replaced` (the same player joined from another connection), `removed` (the game removed
    the player, or the reconnect grace ran out).
    """

    room: str
    reason: str
    detail: str | None = None


class Error(_Frame, tag="error", frozen=True):
    """A request failed; `room` is set when it concerns one room, `ref` is a log reference."""

    code: str
    message: str
    room: str | None = None
    ref: str | None = None


class Pong(_Frame, tag="pong", frozen=True):
    """Answer to `ping`."""

    id: int = 0


ServerFrame = Welcome | Joined | Event | Ack | Reject | Left | Error | Pong
