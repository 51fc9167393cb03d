"""Fan-out: a room's committed events to the clients connected to this gateway; join, resume, replay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from roomwire.backends.base import Backend, Unsubscribe
from roomwire.backends.records import OutEvent, Published, Receipt
from roomwire.errors import BackendError, HistoryGoneError, RoomClosedError
from roomwire.gateway.connection import Connection, WriteBatch
from roomwire.protocol.codes import CloseCode, ErrorCode
from roomwire.protocol.frames import Ack, Error, Event, Joined, Left, Reject

log = logging.getLogger("roomwire.gateway")

REPLAY_CHUNK = 256  # events read from history per call while a resume replays, at most
# ... and about this many bytes of them (as encoded for the connection): a read decodes its own
# copy of each event on Redis, so 256 large events would hold hundreds of MB per resuming client.
REPLAY_CHUNK_BYTES = 1024 * 1024
REPLAY_FIRST_CHUNK = 16
_RECEIPT_BYTES = 64  # about what an ack or reject weighs, for the live buffer's byte bound
# What encoding an event can raise: an unsupported type, a too-wide int, a bad key, and nesting
# too deep for this stack (the checkpoint bounds depth, so this is a safety net).
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


@dataclass(eq=False, slots=True)
class Member:
    """One player of a room connected here. `buffer` is not None while a resume replays history."""

    room: str
    player: str
    conn: Connection
    delivered: int = 0  # highest room seq this member has been given (or skipped as not theirs)
    buffer: list[OutEvent | Receipt] | None = None
    buffer_sizes: list[int] = field(default_factory=list)  # encoded bytes of each buffer item
    buffered_bytes: int = 0
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
        # Promise 1, no silent gap: the highest room seq handed to members (None until the first
        # commit tells), and the commits held back while a hole before them is being filled.
        self.last_seq: int | None = None
        self._held: list[Published] | None = None

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
        if not self._in_order(pub):
            return
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
                    self._buffer(member, receipt, _RECEIPT_BYTES)
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

    def _in_order(self, pub: Published) -> bool:
        """True when `pub` continues the room's sequence and may be delivered now (promise 1).

        A commit behind a hole is held, with every later one, while the hole is read from the
        history (`_fill_gap`). Events that cannot be had any more (`pub.lost`, from the backend
        or from a failed fill) are reported to the members that missed them first.
        """
        events = pub.events
        last = self.last_seq
        # The usual case first: the next commit, nothing missed, nothing held.
        if (
            events
            and last is not None
            and events[0].seq == last + 1
            and self._held is None
            and pub.lost is None
        ):
            self.last_seq = events[-1].seq
            return True
        if self._held is not None:
            self._held.append(pub)
            return False
        if pub.lost is not None:
            self._report_lost(*pub.lost)
            last = self.last_seq = max(last or 0, pub.lost[1])
        if pub.events:
            first = pub.events[0].seq
            if last is not None and first > last + 1:
                self._held = [pub]
                task = asyncio.create_task(
                    self._fill_gap(last, first - 1), name=f"roomwire-fill-{self.room_id}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return False
            self.last_seq = max(last or 0, pub.events[-1].seq)
        elif last is None:
            # No event yet to learn the position from: a join's receipt carries it.
            seqs = [r.seq for r in pub.receipts if r.kind == "joined"]
            if seqs:
                self.last_seq = max(seqs)
        return True

    async def _fill_gap(self, after: int, until: int) -> None:
        """Read the events after..until that the backend did not deliver, then the held commits."""
        lost: tuple[int, int] | None = None
        missing: tuple[OutEvent, ...] = ()
        try:
            # Only the hole: without a limit this read the whole history after it (up to the room
            # type's `history` events, in one engine call) while the room's commits were held.
            events = await self.backend.read_events(self.room_id, after, until - after)
            missing = tuple(ev for ev in events if ev.seq <= until)
        except HistoryGoneError:
            lost = (after + 1, until)
        except BackendError:
            log.exception("room %s: cannot read events %d..%d to fill a gap", self.room_id, after + 1, until)
            lost = (after + 1, until)
        if lost is None and len(missing) != until - after:
            lost, missing = (after + 1, until), ()  # not what read_events promises: take none
        if lost is None:
            log.warning(
                "room %s: the backend skipped events %d..%d; filled from the history (their "
                "commits' receipts are lost)",
                self.room_id,
                after + 1,
                until,
            )
        held, self._held = self._held or [], None
        with self._batch:
            self._publish(Published(self.room_id, missing, lost=lost))
            for pub in held:  # a later hole holds the rest again, in order
                self._publish(pub)

    def _report_lost(self, first: int, last: int) -> None:
        """Tell every member that missed events first..last that they are gone (protocol §9).

        A live member gets `error {code: history_gone, room}` and then the events after the
        hole. A member still being replayed to (a resume) may or may not have had them from its
        replay; it is closed with 1011 so that it resumes again and learns which.
        """
        log.warning("room %s: events %d..%d are lost for this gateway's members", self.room_id, first, last)
        for member in list(self.members.values()):
            if member.delivered >= last:
                continue  # joined after the hole
            if member.buffer is not None:
                member.conn.close(1011, "events lost: resume")
                continue
            member.delivered = last
            member.conn.send_frame(
                Error(
                    ErrorCode.HISTORY_GONE,
                    f"events {first}..{last} of this room are no longer kept: they were missed",
                    self.room_id,
                )
            )

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
                conn = member.conn
                if member.buffer is not None:
                    if targeted and not ev.is_for(member.player):
                        self._buffer(member, ev, 0)
                        continue
                    # Its size bounds the buffer in bytes: encoded once per wire kind, as below.
                    data = wire.get(conn.wire_kind)
                    if data is None:
                        try:
                            payload = conn.codec.encode(Event(room, ev.seq, ev.type, ev.data))
                        except _ENCODE_ERRORS:
                            # Not cached: live members of this kind must meet the failure
                            # themselves; the replay meets it too and closes this one (1011).
                            self._buffer(member, ev, 0)
                            continue
                        data = wire[conn.wire_kind] = conn.wire_for(payload)
                    self._buffer(member, ev, len(data))
                    continue
                member.delivered = seq
                if targeted and not ev.is_for(member.player):
                    continue
                data = wire.get(conn.wire_kind)
                if data is None:
                    try:
                        payload = conn.codec.encode(Event(room, ev.seq, ev.type, ev.data))
                    except _ENCODE_ERRORS as exc:
                        # One codec's failure must not stop the commit's delivery to the others.
                        self._cannot_encode(member, ev, exc)
                        continue
                    data = wire[conn.wire_kind] = conn.wire_for(payload)
                if single and (with_receipts is None or member.player not in with_receipts):
                    conn.write_now(data)
                else:
                    conn.send_wire(data)

    def _buffer(self, member: Member, item: OutEvent | Receipt, size: int) -> None:
        """Keep a live event or receipt (`size` bytes encoded) for a member whose replay is still running.

        Bounded like the send queue, in frames and bytes: a client that cannot take the replay
        and the live traffic behind it is closed as a slow consumer (4002) and resumes later
        from where it got to.
        """
        buffer = member.buffer
        conn = member.conn
        if buffer is None or conn.is_closed:
            return
        if len(buffer) >= conn.max_queue_frames or member.buffered_bytes + size > conn.max_queue_bytes:
            log.info(
                "room %s: replay to %s fell %d frames behind; closing",
                self.room_id,
                member.player,
                len(buffer),
            )
            member.buffer = None
            member.buffer_sizes, member.buffered_bytes = [], 0
            conn.drop_slow_consumer("slow consumer: replay fell behind live events")
            return
        buffer.append(item)
        member.buffer_sizes.append(size)
        member.buffered_bytes += size

    def _cannot_encode(self, member: Member, ev: OutEvent, exc: Exception) -> None:
        """An event this connection's codec cannot encode: close it (1011), never the others."""
        log.error(
            "room %s: event seq %d (%r) cannot be encoded as %s for connection %d (player %s): %s; "
            "closing it",
            self.room_id,
            ev.seq,
            ev.type,
            member.conn.codec.name,
            member.conn.id,
            member.player,
            exc,
        )
        member.conn.close(CloseCode.INTERNAL, "an event could not be encoded")

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
        """Send the kept events after `member.delivered` in chunks as the socket drains, then
        what arrived meanwhile, then go live.

        Reading a chunk only once the connection's send queue is down to half its limits keeps
        a resume of any length within the queue (promise 7 bounds it), so a resume the history
        allows always completes for a client that reads; live commits wait in `member.buffer`.
        """
        conn = member.conn
        player = member.player
        low_frames, low_bytes = conn.max_queue_frames // 2, conn.max_queue_bytes // 2
        chunk = REPLAY_FIRST_CHUNK  # until the first events tell how large they are
        try:
            while not conn.is_closed:
                try:
                    history = await self.backend.read_events(self.room_id, member.delivered, chunk)
                except HistoryGoneError:
                    gone = "events to resume from are no longer kept"
                    conn.send_frame(Error(ErrorCode.HISTORY_GONE, gone, self.room_id))
                    break
                if not history:
                    break
                sent = sent_bytes = 0
                for ev in history:
                    if ev.seq <= member.delivered:
                        continue
                    if not await conn.wait_drained(low_frames, low_bytes):
                        return  # closed: the client resumes from what it got
                    if self.members.get(player) is not member:
                        return  # replaced by a newer connection, removed, or the room ended
                    member.delivered = ev.seq
                    if ev.is_for(player):
                        size = self._replay_one(member, ev)
                        if size < 0:
                            return
                        sent, sent_bytes = sent + 1, sent_bytes + size
                del history  # not held while the next read waits
                if sent:  # size the next read by what these events weighed
                    chunk = max(1, min(REPLAY_CHUNK, REPLAY_CHUNK_BYTES * sent // max(sent_bytes, 1)))
                self._trim_buffer(member)
        except BackendError:
            log.exception(
                "room %s: replay failed; closing the connection so the client retries", self.room_id
            )
            conn.close(1011, "replay failed")
            return
        buffered, member.buffer = member.buffer or [], None
        member.buffer_sizes, member.buffered_bytes = [], 0
        if conn.is_closed or self.members.get(player) is not member:
            return
        for item in buffered:
            if isinstance(item, OutEvent):
                if item.seq > member.delivered:
                    member.delivered = item.seq
                    if item.is_for(player) and self._replay_one(member, item) < 0:
                        return
            else:
                self._send_receipt(member, item)

    def _replay_one(self, member: Member, ev: OutEvent) -> int:
        """Queue one event of a replay; its encoded size, or -1 (and the connection closed) if it
        cannot be encoded."""
        conn = member.conn
        try:
            payload = conn.codec.encode(Event(self.room_id, ev.seq, ev.type, ev.data))
        except _ENCODE_ERRORS as exc:
            self._cannot_encode(member, ev, exc)
            return -1
        conn.send_wire(conn.wire_for(payload))
        return len(payload)

    def _trim_buffer(self, member: Member) -> None:
        """Drop buffered live events the replay has sent since: the bound counts only what is left."""
        buffer = member.buffer
        if buffer:
            delivered = member.delivered
            kept = [
                (x, size)
                for x, size in zip(buffer, member.buffer_sizes, strict=True)
                if not (isinstance(x, OutEvent) and x.seq <= delivered)
            ]
            member.buffer = [x for x, _ in kept]
            member.buffer_sizes = [size for _, size in kept]
            member.buffered_bytes = sum(member.buffer_sizes)
