"""The Backend protocol: the only interface through which roomwire talks to an engine.

Guarantees every implementation gives (the conformance suite in tests/backends/conformance
asserts each one, against a real engine):

* Inbound order: `append_input` assigns each room's inputs strictly increasing offsets in
  call-completion order, starting at 1 (the create input of `create_room`);
  `read_inputs(after=o)` returns inputs with offset > o in that order.
* Fencing (Promise 4): `acquire_lease` returns an epoch higher than every epoch handed out
  before for that room (also after a restart, or a delete and re-create); the owner of a live
  lease that acquires again gets a new epoch and its old one becomes stale. `commit` and
  `renew_lease` with any other epoch raise StaleLeaseError and change nothing; so does a
  commit to a room that no longer exists.
* Scheduling follows pending input: `hibernate` marks a room hibernating and releases its
  lease in one atomic step, only for the current (owner, epoch) (a stale epoch changes
  nothing); `acquire_lease` clears the mark. `rooms_to_run` lists every room without a live
  lease that is not hibernating or has input appended above its committed offset, so a
  sleeping room with input is found by the next sweep even when its wake-up was lost.
* Atomic commit: a commit's snapshot, events, inbound offset and receipts become visible
  together or not at all. Events must continue the room sequence, which starts at 1: the
  first event's seq is the last committed seq + 1, and `inbound_offset` may neither go back
  nor pass the last appended input (else CommitConflictError, nothing written).
* Commit before delivery (Promise 1, 2): subscribers get every commit (also one without
  events) only after it is durable, exactly once, in seq order, via the callback given to
  `subscribe`. A callback that raises is logged; the commit and other callbacks go on.
  No gap is silent: a backend whose subscription can miss commits (Redis pub/sub) reads them
  back, and events it can no longer read (trimmed from the history meanwhile) are named in
  the next `Published.lost` = (first, last) seq, never skipped without a word.
* History: `read_events(after=s, limit=n)` returns committed events with seq > s (the first n
  when a limit is given), in order, as long as
  they are within the kept window (`history` of the commit's room); older gaps raise
  HistoryGoneError; an unknown room raises RoomNotFoundError.
* Key-value: `kv_get`, `kv_scan` never return an entry whose ttl has passed.
* Room removal: `delete_room` (or a commit with `ended`) removes the room's registry entry,
  inputs, history, snapshot and lease; later appends, reads and lease calls raise
  RoomNotFoundError (a reader waiting in `read_inputs` gets it too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from roomwire.backends.records import Commit, Input, Loaded, OutEvent, Published, RoomRecord

Unsubscribe = Callable[[], None]


@runtime_checkable
class Backend(Protocol):
    """Storage and messaging for rooms: registry, inbound log, leases, journal, history, kv."""

    name: str

    async def open(self) -> None:
        """Connect to the engine; raises BackendUnavailableError when it cannot be reached."""

    async def aclose(self) -> None:
        """Release connections and tasks; the stored data stays."""

    async def drop_all(self) -> None:
        """Delete everything stored under this backend's namespace (tests, `roomwire reset`)."""

    # --- registry -----------------------------------------------------------------------------

    async def create_room(self, record: RoomRecord, first_input: Input) -> None:
        """Register a room and append its first input, atomically; raises SetupError on a duplicate id."""

    async def get_room(self, room_id: str) -> RoomRecord | None:
        """The room's registry record, or None when it does not exist (or has ended)."""

    async def list_rooms(self, room_type: str | None = None) -> list[RoomRecord]:
        """Every live room (of one type when given), oldest first."""

    async def delete_room(self, room_id: str) -> None:
        """Remove the room and everything stored for it; no-op when it does not exist."""

    async def reserve_seat(self, room_id: str, player_id: str, ttl_s: float) -> bool:
        """Hold a seat for a player for ttl_s seconds; False when players + live reservations
        already reach max_players (a player already seated or holding a seat always gets True).
        Raises RoomNotFoundError. A commit with a `joined` receipt for the player releases it."""

    # --- inbound ------------------------------------------------------------------------------

    async def append_input(self, room_id: str, item: Input) -> int:
        """Append to the room's inbound log and return its offset; RoomNotFoundError if gone."""

    @property
    def append_input_nowait(self) -> Callable[[str, Input], int] | None:
        """`append_input` without waiting, where the inbound log is in this process; else None.

        The gateway appends a message from the socket's callback with it, without a task switch.
        Same contract as `append_input` (offsets, errors, waking readers and watchers).
        """

    async def read_inputs(
        self, room_id: str, after: int, limit: int, timeout_s: float | None
    ) -> list[tuple[int, Input]]:
        """Up to `limit` inputs with offset > after; waits up to timeout_s when there are none
        (None: until one arrives, or the room is removed)."""

    def watch_inputs(self, callback: Callable[[str], None]) -> Unsubscribe:
        """Call `callback(room_id)` after inputs are appended, at least for rooms without a live
        lease (workers use it to wake rooms; a distributed engine may skip leased rooms)."""

    # --- lease (Promise 4) --------------------------------------------------------------------

    async def acquire_lease(self, room_id: str, owner: str, ttl_s: float) -> int | None:
        """Take the room's lease if it is free or expired; returns the new, higher epoch or None."""

    async def renew_lease(self, room_id: str, owner: str, epoch: int, ttl_s: float) -> None:
        """Extend a held lease; raises StaleLeaseError when `epoch` is no longer current."""

    async def release_lease(self, room_id: str, owner: str, epoch: int) -> None:
        """Give the lease up (no-op if it is no longer ours)."""

    async def hibernate(self, room_id: str, owner: str, epoch: int) -> bool:
        """Mark the room hibernating and release its lease, atomically; True when done.

        False, and nothing changes, when (owner, epoch) is not the current lease (fencing) or
        the room is gone. Inputs appended meanwhile stay pending: `rooms_to_run` lists the room
        again, and watchers are told as for an append.
        """

    async def rooms_to_run(self) -> list[str]:
        """Rooms that need a worker, oldest first: no live lease, and not hibernating or with
        input appended above the committed offset (pending input).

        Cost: one check per live room (workers sweep with it; an index may replace it, #13).
        """

    # --- journal ------------------------------------------------------------------------------

    async def load(self, room_id: str) -> Loaded | None:
        """The room's last commit, or None before its first commit."""

    async def commit(self, room_id: str, epoch: int, commit: Commit, history: int) -> None:
        """Write one journal step atomically and publish it (see the module docstring).

        `history` is how many events to keep for resume. Raises StaleLeaseError when the epoch
        is not current, CommitConflictError when the events do not continue the sequence.
        """

    async def read_events(self, room_id: str, after: int, limit: int | None = None) -> Sequence[OutEvent]:
        """Committed events with seq > after, in order; HistoryGoneError if some were trimmed.

        `limit` (None: all) caps how many are returned, the first ones; a replay reads history
        in such chunks as the client's socket drains. Callers that pass it must accept an
        implementation that ignores it (older backends) and returns more.
        """

    def subscribe(self, room_id: str, callback: Callable[[Published], None]) -> Unsubscribe:
        """Deliver each later commit of the room to `callback` once, in order, after it is durable.

        Each Published's events continue the previous ones' seqs, except after events named in
        its `lost` (first, last): those were committed but can no longer be delivered.
        On a remote engine the subscription becomes active asynchronously; writes made through
        the same backend instance after this call are ordered after it.
        """

    # --- key-value for lobby data -------------------------------------------------------------

    async def kv_get(self, key: str) -> bytes | None:
        """The value stored under key, or None."""

    async def kv_set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store value under key, expiring after ttl_s seconds when given."""

    async def kv_delete(self, key: str) -> None:
        """Remove key (no-op when absent)."""

    async def kv_scan(self, prefix: str) -> dict[str, bytes]:
        """Every live entry whose key starts with `prefix`, by key (for operator tools).

        Read-only and not atomic: entries set or expiring during the scan may or may not be
        included. Its cost may grow with everything stored, not only the matches (Redis walks
        its keyspace): keep it off per-message paths.
        """
