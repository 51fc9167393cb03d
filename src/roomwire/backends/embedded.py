"""The embedded backend: rooms in process memory, optionally made durable in a SQLite file.

`EmbeddedBackend(path=None)` keeps everything in plain Python structures: inputs and events stay
the msgspec Structs they were given as, nothing is serialized on the hot path. With a `path`, the
same in-memory state is the working copy and every change is first written to a SQLite file
(`_sqlite_store.py`), so closing and reopening the backend finds rooms, unconsumed inputs,
snapshots, history, seats, kv and the epoch counter again. One process owns the file, and
wakeups (`read_inputs`, `watch_inputs`, `subscribe`) are in-process only.

Choices the Backend protocol leaves open, made here (tests/backends asserts each one; the
conformance suite holds those every backend must share):

* Offsets start at 1 (the create input); sequence numbers start at 1 (`last_seq` is 0 before).
* Epochs come from one counter per namespace, so they never repeat for a room, even after
  `delete_room` and re-creating the same id, and (with a file) across restarts.
* `acquire_lease` by the owner of a live lease returns a new, higher epoch: the old one is
  stale from then on. Anyone else gets None until the lease expires. A lease's epoch stays
  current after its expiry until someone else acquires: renewing or committing with it works.
* Lease, seat and kv expiry use `time.monotonic()` in memory and `time.time()` with a file,
  because a file's deadlines must mean the same after a restart.
* `commit` to a room that is gone raises StaleLeaseError (its lease went with it); it also
  rejects an `inbound_offset` below the last commit's or beyond the last appended input
  (CommitConflictError). Inputs up to the committed offset are deleted.
* `read_inputs`, `load`, `read_events`, `reserve_seat` and `acquire_lease` on a room that does
  not exist raise RoomNotFoundError; a `read_inputs` waiting while its room is deleted does too.
* Seated players are learned from receipts (`joined` seats a player, `removed` unseats them);
  `reserve_seat` counts the latest commit's `players` plus live reservations.
* Callbacks (`watch_inputs`, `subscribe`) run synchronously, in the caller's task; one that
  raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TypeVar

import msgspec

from roomwire.backends._sqlite_store import SqliteStore, StoredNamespace, Synchronous
from roomwire.backends.base import Unsubscribe
from roomwire.backends.records import Commit, Input, Loaded, OutEvent, Published, RoomRecord
from roomwire.errors import (
    BackendUnavailableError,
    CommitConflictError,
    HistoryGoneError,
    RoomNotFoundError,
    SetupError,
    StaleLeaseError,
)

__all__ = ["EmbeddedBackend"]

logger = logging.getLogger("roomwire.backends.embedded")

_Callback = TypeVar("_Callback")


@dataclass(slots=True, eq=False)
class _Lease:
    owner: str
    epoch: int
    expires_at: float


@dataclass(slots=True, eq=False)
class _Room:
    """The working state of one room; `inputs` holds offsets last_offset-len+1 .. last_offset."""

    record: RoomRecord
    players: int
    last_offset: int = 0
    inbound_offset: int = 0
    last_seq: int = 0
    snapshot: bytes | None = None
    inputs: deque[Input] = field(default_factory=deque)
    history: deque[OutEvent] = field(default_factory=deque)
    reservations: dict[str, float] = field(default_factory=dict)  # player -> expires_at
    seated: set[str] = field(default_factory=set)
    lease: _Lease | None = None
    hibernating: bool = False  # set by hibernate(), cleared by acquire_lease()
    waiters: list[asyncio.Future[None]] = field(default_factory=list)  # readers; the next append wakes them

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def live_reservations(self, now: float) -> int:
        return sum(1 for expires_at in self.reservations.values() if expires_at > now)


class EmbeddedBackend:
    """In-process backend; durable in a SQLite file (WAL) when `path` is given."""

    def __init__(self, path: str | None, namespace: str, synchronous: Synchronous = "normal") -> None:
        self.name = "sqlite" if path else "memory"
        self.path = path
        self.synchronous = synchronous  # SQLite's durability of a commit (see _sqlite_store)
        self.namespace = namespace
        self._clock: Callable[[], float] = time.time if path else time.monotonic
        self._store: SqliteStore | None = None
        self._is_open = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rooms: dict[str, _Room] = {}  # insertion order = registration order
        self._epoch = 0
        self._kv: dict[str, tuple[bytes, float | None]] = {}
        self._kv_expiry: list[tuple[float, str]] = []  # heap; entries may be outdated
        self._watchers: tuple[Callable[[str], None], ...] = ()
        self._subscribers: dict[str, tuple[Callable[[Published], None], ...]] = {}

    def __repr__(self) -> str:
        return f"EmbeddedBackend(path={self.path!r}, namespace={self.namespace!r})"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Get ready; with a file, (re)load the namespace from it. Opening twice is a no-op."""
        if self._is_open:
            return
        # A backend serves the event loop that opened it (as a Redis connection does). Kept here
        # because on Python 3.11 every get_running_loop() is a getpid() system call, and reads
        # wait once per input of an idle room.
        self._loop = asyncio.get_running_loop()
        if self.path:
            store = SqliteStore(self.path, self.namespace, self.synchronous)
            loaded = await store.open()
            try:
                self._restore(loaded)
            except BaseException:
                await store.aclose()
                raise
            self._store = store
        self._is_open = True

    async def aclose(self) -> None:
        """Stop: waiting readers raise BackendUnavailableError; the stored data stays."""
        self._is_open = False
        for room in self._rooms.values():
            room.wake()
        if self._store is not None:
            store, self._store = self._store, None
            await store.aclose()

    async def drop_all(self) -> None:
        """Delete every room, input, event, lease, seat, kv entry and the epoch counter."""
        self._check_open()
        if self._store is not None:
            self._store.drop_namespace()
        rooms, self._rooms = self._rooms, {}
        for room in rooms.values():
            room.wake()
        self._epoch = 0
        self._kv.clear()
        self._kv_expiry.clear()

    def _check_open(self) -> None:
        if not self._is_open:
            raise BackendUnavailableError(f"{self!r} is not open; call `await backend.open()` first")

    def _restore(self, loaded: StoredNamespace) -> None:
        self._rooms = {}
        self._epoch = loaded.epoch
        for rid, stored in loaded.rooms.items():
            room = _Room(
                record=stored.record,
                players=stored.players,
                inbound_offset=stored.inbound_offset,
                last_seq=stored.last_seq,
                snapshot=stored.snapshot,
                history=deque(stored.events),
                reservations=stored.reservations,
                seated=stored.seated,
                hibernating=stored.hibernating,
            )
            room.inputs.extend(item for _, item in stored.inputs)
            room.last_offset = stored.inputs[-1][0] if stored.inputs else stored.inbound_offset
            if stored.lease is not None:
                room.lease = _Lease(*stored.lease)
            self._rooms[rid] = room
        self._kv = dict(loaded.kv)
        self._kv_expiry = [(exp, key) for key, (_, exp) in self._kv.items() if exp is not None]
        heapq.heapify(self._kv_expiry)

    def _room(self, room_id: str) -> _Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomNotFoundError(f"room {room_id!r} does not exist (never created, or ended)")
        return room

    # --- registry -----------------------------------------------------------------------------

    async def create_room(self, record: RoomRecord, first_input: Input) -> None:
        """Register a room and append its first input (offset 1); SetupError on a duplicate id."""
        self._check_open()
        if record.id in self._rooms:
            raise SetupError(f"room {record.id!r} already exists; room ids must be unique")
        if self._store is not None:
            self._store.create_room(record, first_input)
        room = _Room(record=record, players=record.players, last_offset=1)
        room.inputs.append(first_input)
        self._rooms[record.id] = room
        self._notify_watchers(record.id)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        """The room's record with its current `players` and live `reserved` seats, or None."""
        self._check_open()
        room = self._rooms.get(room_id)
        return None if room is None else self._public_record(room)

    async def list_rooms(self, room_type: str | None = None) -> list[RoomRecord]:
        """Every live room (of one type when given), in registration order."""
        self._check_open()
        return [
            self._public_record(room)
            for room in self._rooms.values()
            if room_type is None or room.record.type == room_type
        ]

    def _public_record(self, room: _Room) -> RoomRecord:
        return msgspec.structs.replace(
            room.record,
            players=room.players,
            reserved=room.live_reservations(self._clock()),
            hibernating=room.hibernating,
        )

    async def delete_room(self, room_id: str) -> None:
        """Remove the room and everything stored for it; no-op when it does not exist."""
        self._check_open()
        if room_id not in self._rooms:
            return
        if self._store is not None:
            self._store.delete_room(room_id)
        self._rooms.pop(room_id).wake()

    async def reserve_seat(self, room_id: str, player_id: str, ttl_s: float) -> bool:
        """Hold a seat until ttl_s from now; False when players + live reservations reach max."""
        self._check_open()
        room = self._room(room_id)
        if player_id in room.seated:
            return True
        now = self._clock()
        expired = [p for p, expires_at in room.reservations.items() if expires_at <= now]
        held = player_id in room.reservations and player_id not in expired
        if not held and room.players + len(room.reservations) - len(expired) >= room.record.max_players:
            return False
        expires_at = max(now + ttl_s, room.reservations.get(player_id, 0.0))
        if self._store is not None:
            self._store.set_seats(room_id, [(player_id, expires_at)], drop=expired)
        for p in expired:
            del room.reservations[p]
        room.reservations[player_id] = expires_at
        return True

    # --- inbound ------------------------------------------------------------------------------

    async def append_input(self, room_id: str, item: Input) -> int:
        """Append to the room's inbound log; returns its offset. RoomNotFoundError if gone."""
        return self.append_input_nowait(room_id, item)

    def append_input_nowait(self, room_id: str, item: Input) -> int:
        """`append_input` without a coroutine: the log is in this process, nothing waits."""
        if not self._is_open:  # inline: once per message
            self._check_open()
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomNotFoundError(f"room {room_id!r} does not exist (never created, or ended)")
        offset = room.last_offset + 1
        if self._store is not None:
            self._store.append_input(room_id, offset, item)
        room.inputs.append(item)
        room.last_offset = offset
        if room.waiters:
            room.wake()
        if self._watchers:
            self._notify_watchers(room_id)
        return offset

    async def read_inputs(
        self, room_id: str, after: int, limit: int, timeout_s: float | None
    ) -> list[tuple[int, Input]]:
        """Up to `limit` inputs with offset > after, waiting up to timeout_s when there are none
        (None: no deadline).

        Raises RoomNotFoundError when the room does not exist or is deleted while waiting, and
        BackendUnavailableError when the backend is closed while waiting.
        """
        if not self._is_open:  # inline: once per message
            self._check_open()
        room = self._room(room_id)
        if (not room.inputs or room.last_offset <= after) and (timeout_s is None or timeout_s > 0):
            # A bare future per wait, and a timer only with a deadline: this runs once per input
            # of a room, where asyncio.timeout() and an Event cost measurably more (scale scenario
            # of bench/: server CPU per 1,000 deliveries 0.044 -> 0.0385 s).
            loop = self._loop
            assert loop is not None  # set by open(), which _check_open() proved ran
            deadline = None if timeout_s is None or timeout_s == math.inf else loop.time() + timeout_s
            while not room.inputs or room.last_offset <= after:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return []
                waiter: asyncio.Future[None] = loop.create_future()
                room.waiters.append(waiter)
                timer = None if remaining is None else loop.call_later(remaining, _expire, waiter)
                try:
                    await waiter
                finally:
                    if timer is not None:
                        timer.cancel()
                    if room.waiters:  # timed out or cancelled: leave no stale waiter behind
                        with contextlib.suppress(ValueError):
                            room.waiters.remove(waiter)
                self._check_open()
                if self._rooms.get(room_id) is not room:
                    raise RoomNotFoundError(f"room {room_id!r} was removed while waiting")
        last = room.last_offset
        if after == last - 1 and limit > 0 and room.inputs:  # the usual case: the input that woke the reader
            return [(last, room.inputs[-1])]
        first = last - len(room.inputs) + 1
        start = max(0, after + 1 - first)
        return [
            (first + i, item)
            for i, item in enumerate(islice(room.inputs, start, start + max(limit, 0)), start)
        ]

    def watch_inputs(self, callback: Callable[[str], None]) -> Unsubscribe:
        """Call `callback(room_id)` synchronously after every append (create_room included)."""
        self._watchers = (*self._watchers, callback)
        return self._unsubscriber(lambda: self._watchers, self._set_watchers, callback)

    def _set_watchers(self, callbacks: tuple[Callable[[str], None], ...]) -> None:
        self._watchers = callbacks

    def _notify_watchers(self, room_id: str) -> None:
        for callback in self._watchers:
            try:
                callback(room_id)
            except Exception:
                logger.exception("input watcher %r failed for room %s", callback, room_id)

    # --- lease (Promise 4) --------------------------------------------------------------------

    async def acquire_lease(self, room_id: str, owner: str, ttl_s: float) -> int | None:
        """A new, higher epoch when the lease is free, expired or already `owner`'s; else None."""
        self._check_open()
        room = self._room(room_id)
        now = self._clock()
        lease = room.lease
        if lease is not None and lease.owner != owner and lease.expires_at > now:
            return None
        epoch = self._epoch + 1
        if self._store is not None:
            self._store.set_lease(room_id, owner, epoch, now + ttl_s)
        self._epoch = epoch
        room.lease = _Lease(owner, epoch, now + ttl_s)
        room.hibernating = False  # the file's row was cleared by set_lease
        return epoch

    async def renew_lease(self, room_id: str, owner: str, epoch: int, ttl_s: float) -> None:
        """Extend the lease to ttl_s from now; StaleLeaseError when `epoch` is not current."""
        self._check_open()
        lease = self._current_lease(room_id, owner, epoch)
        expires_at = self._clock() + ttl_s
        if self._store is not None:
            self._store.set_lease(room_id, owner, epoch, expires_at)
        lease.expires_at = expires_at

    async def release_lease(self, room_id: str, owner: str, epoch: int) -> None:
        """Give the lease up; no-op when it is no longer ours."""
        self._check_open()
        room = self._rooms.get(room_id)
        if room is None or room.lease is None or (room.lease.owner, room.lease.epoch) != (owner, epoch):
            return
        if self._store is not None:
            self._store.set_lease(room_id, None, None, None)
        room.lease = None

    async def hibernate(self, room_id: str, owner: str, epoch: int) -> bool:
        """Mark the room hibernating and release its lease if (owner, epoch) is current.

        Watchers are told when inputs wait (appends made under the lease woke nobody).
        """
        self._check_open()
        room = self._rooms.get(room_id)
        if room is None or room.lease is None or (room.lease.owner, room.lease.epoch) != (owner, epoch):
            return False  # fencing: a stale epoch cannot put the room to sleep
        if self._store is not None:
            self._store.hibernate(room_id)
        room.lease = None
        room.hibernating = True
        if room.last_offset > room.inbound_offset and self._watchers:
            self._notify_watchers(room_id)
        return True

    async def rooms_to_run(self) -> list[str]:
        """Rooms without a live lease that are not hibernating or have pending input."""
        self._check_open()
        now = self._clock()
        return [
            room_id
            for room_id, room in self._rooms.items()
            if (room.lease is None or room.lease.expires_at <= now)
            and (not room.hibernating or room.last_offset > room.inbound_offset)
        ]

    def _current_lease(self, room_id: str, owner: str | None, epoch: int) -> _Lease:
        room = self._rooms.get(room_id)
        lease = room.lease if room is not None else None
        if lease is None or lease.epoch != epoch or (owner is not None and lease.owner != owner):
            current = "none" if lease is None else str(lease.epoch)
            raise StaleLeaseError(
                f"epoch {epoch} of room {room_id!r} is stale (current: {current}); "
                "another worker owns the room now: drop its in-memory state"
            )
        return lease

    # --- journal ------------------------------------------------------------------------------

    async def load(self, room_id: str) -> Loaded | None:
        """The room's last commit, or None before the first; RoomNotFoundError if gone."""
        self._check_open()
        room = self._room(room_id)
        if room.snapshot is None:
            return None
        return Loaded(snapshot=room.snapshot, inbound_offset=room.inbound_offset, last_seq=room.last_seq)

    async def commit(self, room_id: str, epoch: int, commit: Commit, history: int) -> None:
        """Write one journal step atomically, then publish it to the room's subscribers.

        Raises StaleLeaseError (epoch not current, or room gone) or CommitConflictError (events
        do not continue the sequence, or the inbound offset goes back or beyond the last
        input); either way nothing changes.
        """
        if not self._is_open:  # inline: once per message
            self._check_open()
        self._current_lease(room_id, None, epoch)
        room = self._rooms[room_id]
        for i, event in enumerate(commit.events):
            if event.seq != room.last_seq + 1 + i:
                raise CommitConflictError(
                    f"room {room_id!r}: event seq {event.seq} does not continue the sequence "
                    f"(expected {room.last_seq + 1 + i}); reload the room and retry"
                )
        if not room.inbound_offset <= commit.inbound_offset <= room.last_offset:
            raise CommitConflictError(
                f"room {room_id!r}: inbound offset {commit.inbound_offset} is outside "
                f"{room.inbound_offset}..{room.last_offset} (committed..appended)"
            )
        last_seq = commit.events[-1].seq if commit.events else room.last_seq
        keep = max(history, 0)
        seated: list[str] = []
        unseated: list[str] = []
        for receipt in commit.receipts:  # one pass: most commits carry only acks
            if receipt.kind == "joined":
                seated.append(receipt.player)
            elif receipt.kind == "removed":
                unseated.append(receipt.player)
        if self._store is not None:
            # Skip the deletes that would find nothing: most commits trim nothing or one event.
            must_trim = len(room.history) + len(commit.events) > keep
            consumed = commit.inbound_offset - (room.last_offset - len(room.inputs))
            self._store.commit(
                room_id,
                commit,
                last_seq,
                last_seq - keep + 1 if must_trim else None,
                consumed > 0,
                seated,
                unseated,
            )
        if commit.ended is None:
            self._apply(room, commit, last_seq, keep, seated, unseated)
        self._publish(room_id, Published(room_id, commit.events, commit.receipts, commit.ended))
        if commit.ended is not None:
            # Ended: published above, then removed like delete_room (the file already was).
            self._rooms.pop(room_id).wake()

    def _apply(
        self, room: _Room, commit: Commit, last_seq: int, keep: int, seated: list[str], unseated: list[str]
    ) -> None:
        room.snapshot = commit.snapshot
        room.inbound_offset = commit.inbound_offset
        room.last_seq = last_seq
        if commit.players is not None:
            room.players = commit.players
        history = room.history
        history.extend(commit.events)
        while len(history) > keep:
            history.popleft()
        # Inputs up to the committed offset are consumed: drop them to bound memory.
        consumed = commit.inbound_offset - (room.last_offset - len(room.inputs))
        for _ in range(min(consumed, len(room.inputs))):
            room.inputs.popleft()
        for player in seated:
            room.reservations.pop(player, None)
            room.seated.add(player)
        for player in unseated:
            room.seated.discard(player)

    async def read_events(self, room_id: str, after: int, limit: int | None = None) -> Sequence[OutEvent]:
        """Committed events with seq > after; HistoryGoneError when some are out of the window."""
        self._check_open()
        room = self._room(room_id)
        if after >= room.last_seq:
            return []
        oldest = room.history[0].seq if room.history else room.last_seq + 1
        if after < oldest - 1:
            raise HistoryGoneError(
                f"room {room_id!r} keeps events from seq {oldest} on; events after {after} are gone: "
                "rejoin the room instead of resuming"
            )
        start = after + 1 - oldest
        return list(islice(room.history, start, None if limit is None else start + max(limit, 0)))

    def subscribe(self, room_id: str, callback: Callable[[Published], None]) -> Unsubscribe:
        """Call `callback` synchronously inside each later commit of the room, in order."""
        self._subscribers[room_id] = (*self._subscribers.get(room_id, ()), callback)

        def current() -> tuple[Callable[[Published], None], ...]:
            return self._subscribers.get(room_id, ())

        def replace(callbacks: tuple[Callable[[Published], None], ...]) -> None:
            if callbacks:
                self._subscribers[room_id] = callbacks
            else:
                self._subscribers.pop(room_id, None)

        return self._unsubscriber(current, replace, callback)

    def _publish(self, room_id: str, published: Published) -> None:
        for callback in self._subscribers.get(room_id, ()):
            try:
                callback(published)
            except Exception:
                logger.exception("subscriber %r of room %s failed", callback, room_id)

    @staticmethod
    def _unsubscriber(
        current: Callable[[], tuple[_Callback, ...]],
        replace: Callable[[tuple[_Callback, ...]], None],
        callback: _Callback,
    ) -> Unsubscribe:
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            callbacks = list(current())
            for i, cb in enumerate(callbacks):
                if cb is callback:
                    del callbacks[i]
                    break
            replace(tuple(callbacks))

        return unsubscribe

    # --- key-value for lobby data -------------------------------------------------------------

    async def kv_get(self, key: str) -> bytes | None:
        """The value stored under key, or None (also once its ttl has passed)."""
        self._check_open()
        self._expire_kv()
        entry = self._kv.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self._clock()):
            return None
        return entry[0]

    async def kv_set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store value under key, expiring after ttl_s seconds when given."""
        self._check_open()
        self._expire_kv()
        expires_at = None if ttl_s is None else self._clock() + ttl_s
        if self._store is not None:
            self._store.kv_set(key, value, expires_at)
        self._kv[key] = (value, expires_at)
        if expires_at is not None:
            heapq.heappush(self._kv_expiry, (expires_at, key))

    async def kv_delete(self, key: str) -> None:
        """Remove key (no-op when absent)."""
        self._check_open()
        if key not in self._kv:
            return
        if self._store is not None:
            self._store.kv_delete([key])
        del self._kv[key]

    async def kv_scan(self, prefix: str) -> dict[str, bytes]:
        """Every live entry whose key starts with prefix, by key."""
        self._check_open()
        self._expire_kv()
        now = self._clock()
        return {
            key: value
            for key, (value, expires_at) in self._kv.items()
            if key.startswith(prefix) and (expires_at is None or expires_at > now)
        }

    def _expire_kv(self) -> None:
        """Drop keys whose ttl has passed (the heap may hold outdated deadlines: skip those)."""
        heap, now = self._kv_expiry, self._clock()
        due: list[tuple[float, str]] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap))
        expired = [key for expires_at, key in due if self._kv.get(key, (b"", None))[1] == expires_at]
        if expired and self._store is not None:
            try:
                self._store.kv_delete(expired)
            except Exception:
                for entry in due:  # retry on the next call; kv_get checks deadlines itself
                    heapq.heappush(heap, entry)
                raise
        for key in expired:
            del self._kv[key]


def _expire(waiter: asyncio.Future[None]) -> None:
    """Timer callback: end a reader's wait when its timeout passes."""
    if not waiter.done():
        waiter.set_result(None)
