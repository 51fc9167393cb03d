"""Records that cross the backend boundary: inputs, commits, events, room registry entries."""

from __future__ import annotations

from typing import Any, Literal, NewType

import msgspec

RoomId = NewType("RoomId", str)
PlayerId = NewType("PlayerId", str)
Seq = NewType("Seq", int)
Epoch = NewType("Epoch", int)
Offset = NewType("Offset", int)

LeaveReason = Literal["left", "disconnected", "timed_out", "kicked"]


# --- inbound: what gateways append, in arrival order ------------------------------------------


class CreateInput(msgspec.Struct, frozen=True, tag_field="k", tag="create", array_like=True):
    """First input of every room: run the create hook with these options."""

    options: dict[str, Any]
    at: float


class JoinInput(msgspec.Struct, frozen=True, tag_field="k", tag="join", array_like=True):
    """A player (identified by a verified seat) asks to enter; `ref` correlates the receipt.

    `ref` also names the *session* the join opens: every later input of that connection carries
    it. `rejoin` is True when the seat was a `joined.rejoin` seat: such a join continues a
    membership, so the room refuses it for a player it no longer remembers (promise 2).
    """

    player: str
    claims: dict[str, Any]
    ref: str
    at: float
    rejoin: bool = False


class LeaveInput(msgspec.Struct, frozen=True, tag_field="k", tag="leave", array_like=True):
    """A player left for good (`left`), or timed out.

    `session`: the join `ref` of the connection that left; the room ignores the leave of a
    session the player has replaced by joining again. "" always applies.
    """

    player: str
    reason: str
    at: float
    session: str = ""


class DisconnectInput(msgspec.Struct, frozen=True, tag_field="k", tag="disconnect", array_like=True):
    """A player's connection dropped; the room keeps the seat for the reconnect grace period.

    `session` is the `ref` of the join that connection made: the room ignores the disconnect of a
    connection the player has since replaced by joining again (through any gateway). "" always
    applies.
    """

    player: str
    at: float
    session: str = ""


class MessageInput(msgspec.Struct, frozen=True, tag_field="k", tag="msg", array_like=True):
    """A game message from a player; `id` is the client message id (None: fire and forget).

    `session`: the join `ref` of the connection that sent it; the room refuses (`replaced`) a
    message of a session the player has replaced by joining again. "" always applies.
    """

    player: str
    type: str
    data: Any
    id: int | None
    at: float
    session: str = ""
    # W3C traceparent of the gateway's span when tracing is on (runtime.tracing); "" otherwise.
    trace: str = ""


Input = CreateInput | JoinInput | LeaveInput | DisconnectInput | MessageInput


# --- outbound: what a commit publishes --------------------------------------------------------


class OutEvent(msgspec.Struct, frozen=True, array_like=True):
    """A room event with its room sequence number; `to`/`exclude` address a subset of players."""

    seq: int
    type: str
    data: Any
    to: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def is_for(self, player: str) -> bool:
        """True when `player` should receive this event."""
        if self.to is not None:
            return player in self.to
        return self.exclude is None or player not in self.exclude


ReceiptKind = Literal["ack", "dup", "reject", "joined", "refused", "removed"]


class Receipt(msgspec.Struct, frozen=True, array_like=True):
    """Outcome of one player's input, delivered live to that player only (never replayed).

    kind: ack/dup/reject answer a message (`ref` = client id as str); joined/refused answer a
    join (`ref` = the join's ref); removed tells a player they are no longer in the room.
    `session`: the session (join ref) of the input answered (for `removed`: the membership
    removed); gateways deliver a receipt only to the connection of that session ("": any).
    """

    player: str
    kind: ReceiptKind
    ref: str = ""
    code: str = ""
    message: str = ""
    last_id: int = 0  # joined: the last applied client message id of the player
    seq: int = 0  # joined: the room seq before the join step; events after it are the player's
    log_ref: str = ""  # reject with code internal: the reference id in the server log
    session: str = ""


class Commit(msgspec.Struct, frozen=True):
    """One atomic journal step of a room, written by the lease holder.

    `snapshot` is the encoded room snapshot after the step; `inbound_offset` the offset of the
    last input it consumed; `events` continue the room sequence without gaps (first event's seq
    is the previous commit's last seq + 1); `ended` removes the room after publishing.
    """

    snapshot: bytes
    inbound_offset: int
    events: tuple[OutEvent, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    ended: str | None = None
    players: int | None = None  # connected-or-seated player count, for the lobby


class Published(msgspec.Struct, frozen=True):
    """What a subscriber receives for each commit, in commit order.

    `lost` is (first, last): committed events with these seqs that this subscriber can no
    longer be given (missed on the way and trimmed from the history since); they come before
    `events`. None, the usual case: nothing lost, `events` continue what was delivered before.
    """

    room: str
    events: tuple[OutEvent, ...]
    receipts: tuple[Receipt, ...] = ()
    ended: str | None = None
    lost: tuple[int, int] | None = None


class Loaded(msgspec.Struct, frozen=True):
    """The last commit of a room, as recovery needs it."""

    snapshot: bytes
    inbound_offset: int
    last_seq: int


# --- registry ---------------------------------------------------------------------------------


class RoomRecord(msgspec.Struct, frozen=True):
    """A room as the lobby sees it."""

    id: str
    type: str
    max_players: int
    meta: dict[str, Any] = {}
    private: bool = False
    players: int = 0
    reserved: int = 0
    created_at: float = 0.0
    code_version: str = ""
    worker: str | None = None
    hibernating: bool = False  # read-only: the backend's mark (Backend.hibernate), not stored here
