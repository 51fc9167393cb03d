"""One room's commits, delivered to its subscribers exactly once and in order over Redis pub/sub.

Pub/sub is at most once: a message published while the connection was down is lost, and the
hub says so by reporting the channel active again. Each commit's message carries
`<incarnation>:<commit number>|<Published>`, so this feed can tell a duplicate (number already
delivered), a gap (number skipped) and a room deleted and created again (new incarnation). On
a gap, and after every (re)activation, it reads what it missed from the room's commit log and
history streams (`fill.lua`) and delivers those commits before the buffered live ones. Events
trimmed from the history before it could read them are named in `Published.lost` of the first
commit it delivers then, so its subscribers learn of the hole (promise 1: no silent gap).

States: starting (position unknown, messages buffered) -> live (messages applied as they come)
<-> syncing (reading the streams, messages buffered); any -> closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import msgspec

from roomwire.backends.records import OutEvent, Published, Receipt
from roomwire.errors import BackendError

__all__ = ["FAR", "Fill", "LoggedCommit", "RoomFeed"]

logger = logging.getLogger("roomwire.backends.redis")

FAR = 2**53  # "after everything": a fill that only reports the position
GONE = "gone"  # `ended` of the notice for a room found deleted after a missed ended commit
_MAX_BUFFER = 4096  # messages kept while syncing; beyond that the streams are read again

_decode_published = msgspec.msgpack.Decoder(Published).decode


@dataclass(frozen=True, slots=True)
class LoggedCommit:
    """A commit as the room's commit log keeps it: its number, event range and receipts."""

    number: int
    first_seq: int
    count: int
    receipts: tuple[Receipt, ...]


@dataclass(frozen=True, slots=True)
class Fill:
    """What `fill.lua` found: the room's position and what was committed after the asked one."""

    incarnation: bytes
    commit: int
    last_seq: int
    log: list[LoggedCommit] = field(default_factory=list)
    events: dict[int, OutEvent] = field(default_factory=dict)


Fetch = Callable[[int, int], Awaitable[Fill | None]]  # (after commit, after seq) -> Fill; None: no room


class RoomFeed:
    """Delivers one room's commits to its callbacks once each, in commit order."""

    def __init__(
        self,
        room_id: str,
        fetch: Fetch,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.room_id = room_id
        self.callbacks: tuple[Callable[[Published], None], ...] = ()
        self.ready = asyncio.Event()  # set once the first sync after subscribing is done
        self._fetch = fetch
        self._spawn = spawn
        self._incarnation: bytes | None = None
        self._commit = 0
        self._seq = 0
        self._ended = False
        self._based = False
        self._syncing = False
        self._again = False
        self._closed = False
        self._buffer: list[tuple[bytes, int, bytes]] = []

    async def start(self, subscribe: Callable[[], None]) -> None:
        """Take the room's position, then subscribe: commits after this point get delivered."""
        try:
            self._set_base(await self._fetch(FAR, FAR))
        except BackendError as exc:
            logger.warning(
                "room %s: cannot read its position yet (%s); will after subscribing", self.room_id, exc
            )
        if not self._closed:
            subscribe()

    def close(self) -> None:
        """Deliver nothing more."""
        self._closed = True
        self.callbacks = ()
        self._buffer.clear()
        self.ready.set()

    # --- live messages ------------------------------------------------------------------------

    def on_active(self) -> None:
        """The channel is (again) subscribed: anything may have been missed before, so sync."""
        self._start_sync()

    def _start_sync(self) -> None:
        if self._closed:
            return
        if self._syncing:
            self._again = True
            return
        self._syncing = True
        self._spawn(self._sync())

    def on_message(self, payload: bytes) -> None:
        """A commit message from the channel."""
        if self._closed:
            return
        head, _, body = payload.partition(b"|")
        incarnation, _, number = head.rpartition(b":")
        try:
            commit = int(number)
        except ValueError:
            logger.error("room %s: ignoring a malformed commit message %r", self.room_id, payload[:40])
            return
        if self._syncing or not self._based:
            if len(self._buffer) >= _MAX_BUFFER:
                self._buffer.clear()  # the sync reads them from the streams instead
                self._again = True
            self._buffer.append((incarnation, commit, body))
            return
        if not self._apply(incarnation, commit, body):
            self._buffer.append((incarnation, commit, body))
            self._start_sync()

    def _apply(self, incarnation: bytes, commit: int, body: bytes) -> bool:
        """Deliver a live message if it is the next commit; False when commits are missing."""
        if incarnation != self._incarnation:
            if commit != 1:
                return False
            self._reset(incarnation)
        if commit <= self._commit:
            return True  # already delivered (by a sync)
        if commit != self._commit + 1:
            return False
        self._deliver(commit, _decode_published(body))
        return True

    def _drain(self) -> bool:
        """Apply the buffered messages in order; False when a gap remains (they stay buffered)."""
        buffered, self._buffer = self._buffer, []
        for i, (incarnation, commit, body) in enumerate(buffered):
            if not self._apply(incarnation, commit, body):
                self._buffer = buffered[i:] + self._buffer
                return False
        return True

    # --- catching up from the streams ---------------------------------------------------------

    async def _sync(self) -> None:
        """Read what was missed, deliver it, then the buffered messages; until no gap is left."""
        try:
            while not self._closed:
                self._again = False
                if not self._based:
                    self._set_base(await self._fetch(FAR, FAR))
                else:
                    fill = await self._fetch(self._commit, self._seq)
                    if fill is None:
                        self._room_gone()
                        continue_sync = False
                    else:
                        continue_sync = not self._catch_up(fill)
                    if continue_sync:
                        self._again = True
                        continue
                if not self._drain():
                    self._again = True
                if not self._again:
                    break
        except BackendError as exc:
            # The hub reports the channel active again after the link recovers; sync then.
            logger.warning("room %s: cannot read missed commits yet (%s)", self.room_id, exc)
        finally:
            self._syncing = False
            self.ready.set()

    def _set_base(self, fill: Fill | None) -> None:
        if fill is None:
            self._reset(None)
        else:
            self._incarnation, self._commit, self._seq = fill.incarnation, fill.commit, fill.last_seq
            self._ended = False
        self._based = True

    def _room_gone(self) -> None:
        """The room no longer exists: deliver what arrived in order, then say it is gone."""
        self._drain()
        self._buffer.clear()  # the rest belongs to a room we can no longer read
        if self._incarnation is not None and self._commit > 0 and not self._ended:
            self._deliver(self._commit + 1, Published(room=self.room_id, events=(), ended=GONE))
        self._reset(None)

    def _catch_up(self, fill: Fill) -> bool:
        """Deliver the commits made after ours; False when the room was re-created (read again)."""
        if fill.incarnation != self._incarnation:
            if self._incarnation is not None and self._commit > 0 and not self._ended:
                self._deliver(self._commit + 1, Published(room=self.room_id, events=(), ended=GONE))
            self._reset(fill.incarnation)
            return False
        log = [entry for entry in fill.log if entry.number > self._commit]
        # Events missed and trimmed from the history since: the history keeps the last events
        # without holes, so they are a prefix of what was missed. Named in the first commit
        # delivered below (`Published.lost`): a gap is never silent (promise 1).
        oldest = min(fill.events, default=fill.last_seq + 1)
        lost = (self._seq + 1, oldest - 1) if oldest - 1 > self._seq else None
        if lost is not None:
            logger.warning(
                "room %s: events %d..%d were trimmed from the history before this subscriber "
                "could read them; reported to it as lost",
                self.room_id,
                *lost,
            )
        unlogged_until = log[0].number - 1 if log else fill.commit
        if unlogged_until > self._commit:
            # Commits older than the kept log: their events are still in the history, their
            # receipts are lost (the log keeps the last few hundred commits).
            first_logged = next((entry.first_seq for entry in log if entry.count), fill.last_seq + 1)
            events = self._events(fill, self._seq + 1, first_logged - 1)
            logger.warning(
                "room %s: commits %d..%d were trimmed from the commit log; their receipts are lost",
                self.room_id,
                self._commit + 1,
                unlogged_until,
            )
            if events or lost is not None:
                self._deliver(unlogged_until, Published(room=self.room_id, events=events, lost=lost))
                lost = None
            self._commit = unlogged_until
        for entry in log:
            events = self._events(fill, entry.first_seq, entry.first_seq + entry.count - 1)
            self._deliver(
                entry.number,
                Published(room=self.room_id, events=events, receipts=entry.receipts, lost=lost),
            )
            lost = None
        if lost is not None:  # nothing left to carry it (a log without the last commits)
            self._deliver(fill.commit, Published(room=self.room_id, events=(), lost=lost))
        self._commit = max(self._commit, fill.commit)
        self._seq = max(self._seq, fill.last_seq)
        return True

    @staticmethod
    def _events(fill: Fill, first: int, last: int) -> tuple[OutEvent, ...]:
        """The events first..last that the history still holds (trimmed ones are `lost`)."""
        return tuple(fill.events[s] for s in range(first, last + 1) if s in fill.events)

    # --- delivery -----------------------------------------------------------------------------

    def _reset(self, incarnation: bytes | None) -> None:
        self._incarnation, self._commit, self._seq, self._ended = incarnation, 0, 0, False

    def _deliver(self, commit: int, published: Published) -> None:
        self._commit = commit
        if published.lost is not None:
            self._seq = max(self._seq, published.lost[1])
        if published.events:
            self._seq = published.events[-1].seq
        if published.ended is not None:
            self._ended = True
        for callback in self.callbacks:
            try:
                callback(published)
            except Exception:
                # A subscriber's bug must not stop delivery to the others or to later commits.
                logger.exception("subscriber %r of room %s failed", callback, self.room_id)
