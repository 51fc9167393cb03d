"""Fan-out: a room's committed events to the clients connected to this gateway; join, resume, replay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomwire.backends.base import Backend, Unsubscribe
from roomwire.backends.records import OutEvent, Published, Receipt
from roomwire.errors import BackendError, HistoryGoneError, RoomClosedError
from roomwire.gateway.connection import Connection, WriteBatch
from roomwire.protocol.codes import ErrorCode
from roomwire.protocol.frames import Ack, Error, Event, Joined, Left, Reject

log = logging.getLogger("roomwire.gateway")


@dataclass(eq=False, slots=True)
class Member:
    """One player of a room connected here. `buffer` is not None while a resume replays history."""

    room: str
    player: str
    conn: Connection
    delivered: int = 0  # highest room seq this member has been given (or skipped as not theirs)
    buffer: list[OutEvent | Receipt] | None = None
    max_bytes: int = 16 * 1024  # the room type's max_message_bytes
    limiter: Any = None  # the gateway's rate limiter for this player in this room, or None
    session: str = ""  # the `ref` of the join that made this member (see DisconnectInput)


@dataclass(slots=True)
class PendingJoin:
    """A join sent to the room, waiting for its `joined` or `refused` receipt."""

    conn: Connection
    player: str
    since: int | None
    rejoin: str
    outcome: asyncio.Future[Receipt] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RoomFanout:
    """The clients of one room on this gateway, fed by one backend subscription."""

    def __init__(
        self,
        room_id: str,
        backend: Backend,
        on_empty: Callable[[RoomFanout], None],
        batch: WriteBatch | None = None,
    ) -> None:
        self.room_id = room_id
        self._batch = batch or WriteBatch()
        self.backend = backend
        self.members: dict[str, Member] = {}
        self.pending: dict[str, PendingJoin] = {}
        self._on_empty = on_empty
        self._unsubscribe: Unsubscribe = backend.subscribe(room_id, self.on_publish)
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended = False

    def close(self) -> None:
        """Stop receiving the room's commits."""
        self._unsubscribe()
        for task in self._tasks:
            task.cancel()

    def remove(self, member: Member) -> bool:
        """Detach a member if it is still the current one for its player; True if it was."""
        if self.members.get(member.player) is not member:
            return False
        del self.members[member.player]
        self._maybe_empty()
        return True

    def _maybe_empty(self) -> None:
        if not self.members and not self.pending:
            self._on_empty(self)

    # --- commits --------------------------------------------------------------------------------

    def on_publish(self, pub: Published) -> None:
        """Deliver one commit: join answers first, then events in seq order, then receipts."""
        with self._batch:  # one socket write per connection for the whole commit
            self._publish(pub)

    def _publish(self, pub: Published) -> None:
        later: list[Receipt] = []
        for receipt in pub.receipts:
            if receipt.kind == "joined" or receipt.kind == "refused":
                self._answer_join(receipt)
            else:
                later.append(receipt)
        if pub.events:
            self._deliver_events(pub.events, {r.player for r in later} if later else None)
        for receipt in later:
            member = self.members.get(receipt.player)
            if member is not None:
                if member.buffer is not None:
                    member.buffer.append(receipt)
                else:
                    self._send_receipt(member, receipt)
        if pub.ended is not None:
            self.ended = True
            for member in list(self.members.values()):
                member.conn.send_frame(Left(self.room_id, "ended", pub.ended))
                member.conn.rooms.pop(self.room_id, None)
            self.members.clear()
            for pending in self.pending.values():
                if not pending.outcome.done():
                    # Protocol section 6: `room_closed`, not `internal` (which means "retry").
                    pending.outcome.set_exception(RoomClosedError("the room ended while joining it"))
            self.pending.clear()
            self._on_empty(self)

    def _deliver_events(self, events: tuple[OutEvent, ...], with_receipts: set[str] | None) -> None:
        """Queue each event to its members; `with_receipts`: players that also get a receipt now."""
        room = self.room_id
        members = self.members.values()
        # A member's only frame of this commit can go out at once; frames that share a commit
        # with others (more events, an ack) wait for the batch to leave in one write.
        single = len(events) == 1
        for ev in events:
            wire: dict[int, bytes | str] = {}  # prepared once per wire kind, shared by every connection
            seq = ev.seq
            targeted = ev.to is not None or ev.exclude is not None
            for member in members:
                if seq <= member.delivered:
                    continue
                if member.buffer is not None:
                    member.buffer.append(ev)
                    continue
                member.delivered = seq
                if targeted and not ev.is_for(member.player):
                    continue
                conn = member.conn
                data = wire.get(conn.wire_kind)
                if data is None:
                    payload = conn.codec.encode(Event(room, ev.seq, ev.type, ev.data))
                    data = wire[conn.wire_kind] = conn.wire_for(payload)
                if single and (with_receipts is None or member.player not in with_receipts):
                    conn.write_now(data)
                else:
                    conn.send_wire(data)

    def _send_receipt(self, member: Member, receipt: Receipt) -> None:
        if receipt.session and member.session and receipt.session != member.session:
            # Promise 2: it answers an input of a connection this player has since replaced (that
            # one was told `left replaced`); this connection must not take it for its own.
            return
        conn = member.conn
        if receipt.kind == "ack":
            conn.send_frame(Ack(self.room_id, int(receipt.ref)))
        elif receipt.kind == "dup":
            conn.send_frame(Ack(self.room_id, int(receipt.ref), dup=True))
        elif receipt.kind == "reject":
            if receipt.ref:
                conn.send_frame(
                    Reject(
                        self.room_id, int(receipt.ref), receipt.code, receipt.message, receipt.log_ref or None
                    )
                )
            else:
                conn.send_frame(Error(receipt.code, receipt.message, self.room_id, receipt.log_ref or None))
        elif receipt.kind == "removed":
            if receipt.message == "left" and not receipt.session:
                # A receipt from before receipts named their session: it may answer this
                # player's own `leave`, which was told `left` already. (With a session, a
                # member here can only be the one removed: the leaving one was detached first.)
                return
            # Also "disconnected" for a member still here: the room ran out this player's grace
            # (its gateway's presence had lapsed), so the connection must learn it is out.
            if self.remove(member):
                conn.rooms.pop(self.room_id, None)
                conn.send_frame(Left(self.room_id, "removed", receipt.message))

    # --- joins ----------------------------------------------------------------------------------

    def _answer_join(self, receipt: Receipt) -> None:
        pending = self.pending.pop(receipt.ref, None)
        if pending is None:
            if receipt.kind == "joined":
                # A join made elsewhere (another gateway, or one that timed out here): if the
                # player is connected here too, that connection is the one replaced.
                stale = self.members.get(receipt.player)
                if stale is not None and stale.session != receipt.ref and self.remove(stale):
                    stale.conn.rooms.pop(self.room_id, None)
                    stale.conn.send_frame(Left(self.room_id, "replaced"))
            return
        if receipt.kind == "joined" and not pending.conn.is_closed:
            conn = pending.conn
            old = self.members.get(pending.player)
            if old is not None and old.conn is not conn:
                old.conn.rooms.pop(self.room_id, None)
                old.conn.send_frame(Left(self.room_id, "replaced"))
            member = Member(self.room_id, pending.player, conn, delivered=receipt.seq, session=receipt.ref)
            self.members[pending.player] = member
            conn.rooms[self.room_id] = member
            resumed = pending.since is not None
            conn.send_frame(
                Joined(self.room_id, pending.player, receipt.seq, receipt.last_id, pending.rejoin, resumed)
            )
            if resumed and pending.since is not None and pending.since < receipt.seq:
                member.delivered = pending.since
                member.buffer = []
                task = asyncio.create_task(self._replay(member), name=f"roomwire-replay-{self.room_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if not pending.outcome.done():
            pending.outcome.set_result(receipt)

    async def _replay(self, member: Member) -> None:
        """Send the kept events after `member.delivered`, then what arrived meanwhile, then go live."""
        try:
            history = await self.backend.read_events(self.room_id, member.delivered)
        except HistoryGoneError:
            member.conn.send_frame(
                Error(ErrorCode.HISTORY_GONE, "events to resume from are no longer kept", self.room_id)
            )
            history = []
        except BackendError:
            log.exception(
                "room %s: replay failed; closing the connection so the client retries", self.room_id
            )
            member.conn.close(1011, "replay failed")
            return
        conn = member.conn
        player = member.player
        for ev in history:
            if ev.seq > member.delivered:
                member.delivered = ev.seq
                if ev.is_for(player):
                    conn.send_frame(Event(self.room_id, ev.seq, ev.type, ev.data))
        buffered, member.buffer = member.buffer or [], None
        for item in buffered:
            if isinstance(item, OutEvent):
                if item.seq > member.delivered:
                    member.delivered = item.seq
                    if item.is_for(player):
                        conn.send_frame(Event(self.room_id, item.seq, item.type, item.data))
            else:
                self._send_receipt(member, item)
