"""The Redis backend: each room is a few hash-tagged keys, each operation one Lua script.

`RedisBackend(url, namespace)` speaks to a standalone Redis (>= 7.0) or a Redis Cluster through
redis-py's asyncio client (RESP2, hiredis parser). Cluster mode is detected at `open()` (INFO
cluster); `?cluster=1` / `?cluster=0` in the URL forces it either way.

Key layout (`_redis_scripts.py`; `<ns>` is the namespace, every room key tagged `{r:<id>}` so a
cluster keeps the whole room in one slot and every room script touches one slot):

    <ns>:{r:<id>}:meta     hash    record, type, max_players, players, last input offset, incarnation,
                                   last lease epoch, hibernating mark
    <ns>:{r:<id>}:in       stream  inbound inputs, entry id 0-<offset> (offsets from 1)
    <ns>:{r:<id>}:out      stream  history: events, entry id 0-<seq>, exactly the last `history`
    <ns>:{r:<id>}:log      stream  commit log: entry 0-<commit number> -> seq range + receipts
    <ns>:{r:<id>}:snap     hash    snapshot, inbound offset, last seq, commit number
    <ns>:{r:<id>}:lease    hash    owner, epoch, expiry (Redis server time, ms)
    <ns>:{r:<id>}:seats    zset    player -> reservation expiry (server time, ms)
    <ns>:{r:<id>}:members  set     players seated by a `joined` receipt, until `removed`
    <ns>:{r:<id>}:ch       sharded pub/sub channel of the room's commits
    <ns>:{<ns>}:rooms[:<type>]  zsets  registry index, score = registration number
    <ns>:{<ns>}:registered, <ns>:{<ns>}:epoch   counters (registration order, lease epochs)
    <ns>:kv:<key>          string  lobby kv (PX for the ttl); kv_scan walks the keyspace (SCAN MATCH)
    <ns>:wake              classic pub/sub channel: ids of rooms with input and no live lease

Guarantees and choices (the conformance suite asserts the shared ones):

* Commit (`commit.lua`) is one script: lease epoch check (StaleLeaseError), seq and offset
  checks (CommitConflictError), snapshot + offset + last seq, XADD of each event, exact history
  trim, trim of consumed inputs, seat release for `joined`, players count, commit log entry and
  SPUBLISH of the encoded Published, all or nothing. An `ended` commit publishes and then deletes
  the room like `delete_room`.
* Epochs: the acquire script takes max(a fresh value of the namespace counter, the room's last
  epoch + 1), so a room's epochs strictly increase whatever order concurrent acquisitions
  reach Redis in (the counter INCR is a separate call: the counter lives in the namespace's
  slot) and even if the counter went back; the counter keeps them growing across delete and
  re-create of a room id. A lease's epoch stays current after expiry until someone else
  acquires. Lease and seat times are Redis server time (`TIME`), not client clocks.
* Live delivery: the commit script publishes `<incarnation>:<commit number>|<Published>`.
  Pub/sub may lose messages on a reconnect; each room feed (`_redis_feed.py`) detects a
  skipped commit number, and after every (re)subscription it reads what it missed from the
  commit log (last 256 commits, with receipts) and the history (events), so each commit is
  delivered exactly once and in order. Commits older than the log are delivered as their
  events only (receipts lost); a room found deleted after a missed `ended` is reported once as
  `Published(events=(), ended="gone")`. One pub/sub connection per Redis node, shared by every
  subscription of the backend; a message costs one dict lookup.
* A write through this instance (append, commit, create, release) to a room waits until any
  earlier `subscribe` to that room and `watch_inputs` on this instance are active (at most
  5 s), so e.g. a gateway that subscribes and then appends a join sees the join's commit.
* `watch_inputs` is told about appends to rooms with no live lease (and new rooms, and a
  lease released while inputs wait): a lease holder reads its room itself, so wakeups cost
  nothing per message of a running room. Wakeups lost while the pub/sub link is down are not
  replayed: workers also sweep `rooms_to_run` (one `due.lua` per room, pipelined), which
  lists a room with input above its committed offset even when it is marked hibernating.
* `hibernate` (`hibernate.lua`) checks the lease epoch, marks the room hibernating (meta `h`)
  and deletes the lease in one script; `acquire.lua` clears the mark.
* `read_inputs` reads with one script, then waits with XREAD BLOCK (in slices of at most 5 s,
  re-checking that the room exists in between); `delete_room` leaves a tombstone entry that wakes
  waiting readers, which then raise RoomNotFoundError.
* No command is retried automatically: BackendUnavailableError from a write means it may or may
  not have been applied (for `commit`: `load()` tells, by `last_seq`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis.asyncio import Redis

from roomwire.backends._redis_client import CALL_TIMEOUT_S, Client, connect, engine_call
from roomwire.backends._redis_durability import (
    DurabilityOptions,
    WaitMonitor,
    read_server_settings,
    wait_command,
)
from roomwire.backends._redis_live import LiveDelivery
from roomwire.backends._redis_scripts import NamespaceKeys, RoomKeys, Scripts, entry_fields, entry_number
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

__all__ = ["RedisBackend"]

_DROP_TIMEOUT_S = 120.0
_MAX_BLOCK_MS = 5000  # one XREAD BLOCK slice
_LOG_KEEP = 256  # commits kept in a room's commit log, for subscribers that reconnect
_LIST_BATCH = 64

_encode = msgspec.msgpack.Encoder().encode
_decode_input = msgspec.msgpack.Decoder(Input).decode
_decode_event = msgspec.msgpack.Decoder(OutEvent).decode
_decode_record = msgspec.msgpack.Decoder(RoomRecord).decode


def _not_found(room_id: str) -> RoomNotFoundError:
    return RoomNotFoundError(f"room {room_id!r} does not exist (never created, or ended)")


class RedisBackend:
    """Backend on Redis (standalone or cluster): streams, hashes, Lua scripts, sharded pub/sub."""

    name = "redis"
    append_input_nowait = None  # every append is a round trip to the engine

    def __init__(self, url: str, namespace: str) -> None:
        if not namespace or "{" in namespace or "}" in namespace:
            raise SetupError(f"namespace {namespace!r} must be non-empty and contain no braces (hash tags)")
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        cluster = query.pop("cluster", None)
        query.pop("namespace", None)  # roomwire's, not redis-py's
        self.durability = DurabilityOptions.pop_from(query)
        self._wait_monitor = WaitMonitor(self.durability)
        self.url = urlunsplit(parts._replace(query=urlencode(query)))
        self.namespace = namespace
        self._force_cluster = None if cluster is None else cluster.lower() in ("1", "true", "yes")
        self._keys = NamespaceKeys(namespace)
        self._client: Client | None = None
        self._scripts: Scripts | None = None
        self._live: LiveDelivery | None = None
        self._is_cluster = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop open() ran in
        # room -> offset its last read_inputs returned up to: the reader is draining a room known
        # to exist, so its next read can block in XREAD at once (it returns at once when inputs
        # are there) instead of first running the existence-checking read script.
        self._draining: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"RedisBackend(url={self.url!r}, namespace={self.namespace!r})"

    @property
    def pubsub_client_name(self) -> str:
        """The CLIENT SETNAME of this backend's pub/sub connections (visible in CLIENT LIST)."""
        # CLIENT SETNAME refuses spaces and control characters.
        return "roomwire-pubsub:" + "".join(ch if "!" <= ch <= "~" else "_" for ch in self.namespace)

    @property
    def is_cluster(self) -> bool:
        """True when connected to a Redis Cluster."""
        return self._is_cluster

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (detecting cluster mode) and register the scripts; opening twice is a no-op.

        Raises BackendUnavailableError when Redis cannot be reached.
        """
        if self._client is not None:
            return
        connected = await connect(
            self.url, force_cluster=self._force_cluster, pubsub_client_name=self.pubsub_client_name
        )
        try:
            await read_server_settings(connected.client, connected.is_cluster, self.durability)
        except BaseException:
            await connected.client.aclose()
            raise
        self._client = connected.client
        self._loop = asyncio.get_running_loop()  # Python 3.11: each get_running_loop() is a getpid()
        self._is_cluster = connected.is_cluster
        self._scripts = scripts = Scripts(connected.client)

        async def fetch_raw(keys: RoomKeys, after_commit: int, after_seq: int) -> Any:
            return await self._run(scripts.fill, keys.all(), after_commit, after_seq)

        self._live = LiveDelivery(connected.router, self._keys, fetch_raw)

    async def aclose(self) -> None:
        """Close connections and stop tasks; the stored data stays."""
        client, live = self._client, self._live
        self._client = self._scripts = self._live = None
        if live is not None:
            await live.aclose()
        if client is not None:
            await client.aclose()

    async def drop_all(self) -> None:
        """Delete every key of the namespace (SCAN + UNLINK, on every primary of a cluster)."""
        client = self._open_client()
        async with engine_call(_DROP_TIMEOUT_S):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=self._keys.pattern(), count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)

    def _open_client(self) -> Client:
        if self._client is None:
            raise BackendUnavailableError(f"{self!r} is not open; call `await backend.open()` first")
        return self._client

    def _open_scripts(self) -> Scripts:
        if self._scripts is None:
            raise BackendUnavailableError(f"{self!r} is not open; call `await backend.open()` first")
        return self._scripts

    def _open_live(self) -> LiveDelivery:
        if self._live is None:
            raise BackendUnavailableError(f"{self!r} is not open; call `await backend.open()` first")
        return self._live

    async def _run(self, script: Any, keys: list[str], *args: Any) -> Any:
        async with engine_call():
            return await script(keys=keys, args=args)

    async def _run_and_wait(self, script: Any, keys: list[str], *args: Any) -> Any:
        """Run a writing script, then WAIT / WAITAOF on the same connection (they count its writes)."""
        options = self.durability
        client = self._open_client()
        # A pipeline without MULTI: one connection, commands in order.
        timeout_s = CALL_TIMEOUT_S + options.wait_timeout_ms / 1000
        async with engine_call(timeout_s), client.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.execute_command(*wait_command(options))
            result, answer = await pipe.execute()
        self._wait_monitor.check(keys[0], answer)
        return result

    # --- registry -----------------------------------------------------------------------------

    async def create_room(self, record: RoomRecord, first_input: Input) -> None:
        """Register a room and append its first input (offset 1); SetupError on a duplicate id."""
        scripts = self._open_scripts()
        keys = self._keys.room(record.id)
        await self._settle(record.id, wake=True)
        created = await self._run(
            scripts.create,
            keys.all(),
            _encode(record),
            record.type,
            record.max_players,
            record.players,
            _encode(first_input),
            self._keys.wake,
            record.id,
        )
        if not created:
            raise SetupError(f"room {record.id!r} already exists; room ids must be unique")
        # The index is in another slot: registered after the room exists, so a listed room
        # always existed (a crash in between leaves an unlisted room, never a phantom one).
        await self._run(
            scripts.register,
            [self._keys.rooms, self._keys.rooms_of_type(record.type), self._keys.registered],
            record.id,
        )

    async def get_room(self, room_id: str) -> RoomRecord | None:
        """The room's record with its current `players` and live `reserved` seats, or None."""
        scripts = self._open_scripts()
        return self._record(await self._run(scripts.room, self._keys.room(room_id).all()))

    @staticmethod
    def _record(raw: Any) -> RoomRecord | None:
        if not raw:
            return None
        record, players, reserved, hibernating = raw
        return msgspec.structs.replace(
            _decode_record(record),
            players=int(players or 0),
            reserved=int(reserved),
            hibernating=hibernating == b"1",
        )

    async def list_rooms(self, room_type: str | None = None) -> list[RoomRecord]:
        """Every live room (of one type when given), in registration order."""
        client, scripts = self._open_client(), self._open_scripts()
        index = self._keys.rooms if room_type is None else self._keys.rooms_of_type(room_type)
        async with engine_call():
            ids = [raw.decode() for raw in cast(list[bytes], await client.zrange(index, 0, -1))]
        rooms: list[RoomRecord] = []
        for start in range(0, len(ids), _LIST_BATCH):
            chunk = ids[start : start + _LIST_BATCH]
            async with engine_call():
                raws = await self._per_room(client, scripts.room, chunk)
            for room_id, raw in zip(chunk, raws, strict=True):
                record = self._record(raw)
                if record is not None:
                    rooms.append(record)
                else:  # deleted, and its unregistration did not happen (crash) or is under way
                    await self._run(scripts.unregister, [self._keys.rooms, index], room_id)
        return rooms

    async def _per_room(self, client: Client, script: Any, ids: list[str]) -> list[Any]:
        """Run a room script once per room: pipelined, or concurrently on a cluster."""
        if isinstance(client, Redis):
            async with client.pipeline(transaction=False) as pipe:
                for room_id in ids:
                    await script(keys=self._keys.room(room_id).all(), client=pipe)
                return await pipe.execute()
        # Cluster: the rooms live in different slots; one round trip each, concurrently.
        return list(await asyncio.gather(*(script(keys=self._keys.room(r).all()) for r in ids)))

    async def delete_room(self, room_id: str) -> None:
        """Remove the room and everything stored for it; no-op when it does not exist."""
        scripts = self._open_scripts()
        self._draining.pop(room_id, None)
        room_type = await self._run(scripts.delete, self._keys.room(room_id).all())
        if room_type is not None:
            await self._unregister(room_id, room_type.decode())

    async def _unregister(self, room_id: str, room_type: str) -> None:
        await self._run(
            self._open_scripts().unregister, [self._keys.rooms, self._keys.rooms_of_type(room_type)], room_id
        )

    async def reserve_seat(self, room_id: str, player_id: str, ttl_s: float) -> bool:
        """Hold a seat until ttl_s from now; False when players + live reservations reach max.

        Raises RoomNotFoundError.
        """
        scripts = self._open_scripts()
        held = await self._run(scripts.reserve, self._keys.room(room_id).all(), player_id, _ms(ttl_s))
        if held == -1:
            raise _not_found(room_id)
        return bool(held)

    # --- inbound ------------------------------------------------------------------------------

    async def append_input(self, room_id: str, item: Input) -> int:
        """Append to the room's inbound stream; returns its offset. RoomNotFoundError if gone."""
        scripts = self._open_scripts()
        await self._settle(room_id, wake=True)
        offset = await self._run(
            scripts.append, self._keys.room(room_id).all(), _encode(item), self._keys.wake, room_id
        )
        if offset == -1:
            raise _not_found(room_id)
        return int(offset)

    async def read_inputs(
        self, room_id: str, after: int, limit: int, timeout_s: float | None
    ) -> list[tuple[int, Input]]:
        """Up to `limit` inputs with offset > after, waiting up to timeout_s when there are none
        (None: no deadline).

        Raises RoomNotFoundError when the room does not exist or is deleted while waiting.
        """
        client, scripts = self._open_client(), self._open_scripts()
        keys = self._keys.room(room_id)
        after, limit = max(after, 0), max(limit, 0)
        loop = self._loop
        assert loop is not None  # set with the client, which _open_client() proved is there
        deadline = math.inf if timeout_s is None else loop.time() + max(timeout_s, 0.0)
        # One command per input instead of two while a reader drains a room: a deleted room still
        # wakes XREAD with its tombstone, and a slice that runs out re-checks existence below.
        drained = self._draining.pop(room_id, None) == after
        skip = drained and limit > 0 and deadline - loop.time() >= 0.001
        while True:
            if not skip:
                found = await self._run(scripts.read, keys.all(), after, limit)
                if found == -1:
                    raise _not_found(room_id)
                items = self._inputs(room_id, found)
                if items:
                    self._draining[room_id] = items[-1][0]
                    return items
            remaining_ms = min((deadline - loop.time()) * 1000, _MAX_BLOCK_MS)  # inf: no deadline
            if limit == 0 or (remaining_ms < 1 and not skip):
                return []
            block_ms = max(1, int(remaining_ms))
            skip = False
            async with engine_call(block_ms / 1000 + CALL_TIMEOUT_S):
                got: Any = await client.xread({keys.inbound: f"0-{after}"}, count=limit, block=block_ms)
            if got:
                items = self._inputs(room_id, got[0][1])
                self._draining[room_id] = items[-1][0]
                return items
            # A slice ran out: loop, which re-checks that the room still exists.

    @staticmethod
    def _inputs(room_id: str, entries: Any) -> list[tuple[int, Input]]:
        items: list[tuple[int, Input]] = []
        for entry_id, raw in entries:
            fields = entry_fields(raw)
            data = fields.get(b"d")
            if data is None:  # the tombstone delete_room leaves for waiting readers
                raise RoomNotFoundError(f"room {room_id!r} was removed while reading its inputs")
            items.append((entry_number(entry_id), _decode_input(data)))
        return items

    def watch_inputs(self, callback: Callable[[str], None]) -> Unsubscribe:
        """Call `callback(room_id)` when input arrives for a room that no live lease covers.

        That is: a new room, an append while the room has no live lease, a lease released while
        inputs wait. Called from the backend's pub/sub reader task, in publish order.
        """
        return self._open_live().watch(callback)

    # --- lease (Promise 4) --------------------------------------------------------------------

    async def acquire_lease(self, room_id: str, owner: str, ttl_s: float) -> int | None:
        """A new, higher epoch when the lease is free, expired or already `owner`'s; else None.

        Raises RoomNotFoundError.
        """
        client, scripts = self._open_client(), self._open_scripts()
        async with engine_call():
            # The counter lives in the namespace's slot, not the room's: it survives the room.
            epoch = int(await client.incr(self._keys.epoch))
        taken = await self._run(scripts.acquire, self._keys.room(room_id).all(), owner, _ms(ttl_s), epoch)
        if taken == -1:
            raise _not_found(room_id)
        return int(taken) if taken > 0 else None

    async def renew_lease(self, room_id: str, owner: str, epoch: int, ttl_s: float) -> None:
        """Extend the lease to ttl_s from now; StaleLeaseError when `epoch` is not current."""
        scripts = self._open_scripts()
        renewed = await self._run(scripts.renew, self._keys.room(room_id).all(), owner, epoch, _ms(ttl_s))
        if renewed != 1:
            raise _stale(room_id, epoch, renewed[1])

    async def release_lease(self, room_id: str, owner: str, epoch: int) -> None:
        """Give the lease up (waking watchers when inputs wait); no-op when it is not ours."""
        scripts = self._open_scripts()
        await self._settle(room_id, wake=True)
        await self._run(
            scripts.release, self._keys.room(room_id).all(), owner, epoch, self._keys.wake, room_id
        )

    async def hibernate(self, room_id: str, owner: str, epoch: int) -> bool:
        """Mark the room hibernating and release its lease (one script) if (owner, epoch) is
        current; wakes watchers when inputs wait. False when stale or gone."""
        scripts = self._open_scripts()
        await self._settle(room_id, wake=True)
        done = await self._run(
            scripts.hibernate, self._keys.room(room_id).all(), owner, epoch, self._keys.wake, room_id
        )
        return bool(done)

    async def rooms_to_run(self) -> list[str]:
        """Rooms without a live lease that are not hibernating or have pending input.

        One `due.lua` per registered room, pipelined in batches (as `list_rooms`).
        """
        client, scripts = self._open_client(), self._open_scripts()
        async with engine_call():
            ids = [raw.decode() for raw in cast(list[bytes], await client.zrange(self._keys.rooms, 0, -1))]
        due: list[str] = []
        for start in range(0, len(ids), _LIST_BATCH):
            chunk = ids[start : start + _LIST_BATCH]
            async with engine_call():
                flags = await self._per_room(client, scripts.due, chunk)
            due.extend(room_id for room_id, flag in zip(chunk, flags, strict=True) if flag == 1)
        return due

    # --- journal ------------------------------------------------------------------------------

    async def load(self, room_id: str) -> Loaded | None:
        """The room's last commit, or None before the first; RoomNotFoundError if gone."""
        scripts = self._open_scripts()
        found = await self._run(scripts.load, self._keys.room(room_id).all())
        if found == -1:
            raise _not_found(room_id)
        snapshot, offset, last_seq = found
        if snapshot is None:
            return None
        return Loaded(snapshot=snapshot, inbound_offset=int(offset), last_seq=int(last_seq))

    async def commit(self, room_id: str, epoch: int, commit: Commit, history: int) -> None:
        """Write one journal step atomically (one script), then publish it to subscribers.

        Raises StaleLeaseError (epoch not current, or room gone) or CommitConflictError (events
        do not continue the sequence, or the inbound offset goes back or beyond the last
        input); either way nothing changes. BackendUnavailableError: outcome unknown.
        """
        scripts = self._open_scripts()
        events = commit.events
        first = events[0].seq if events else 0
        for i, event in enumerate(events):
            if event.seq != first + i:
                raise CommitConflictError(
                    f"room {room_id!r}: event seqs of one commit must be consecutive "
                    f"(got {event.seq} after {first + i - 1})"
                )
        receipts = commit.receipts
        joined = [r.player for r in receipts if r.kind == "joined"]
        removed = [r.player for r in receipts if r.kind == "removed"]
        published = Published(room=room_id, events=events, receipts=receipts, ended=commit.ended)
        await self._settle(room_id, wake=False)
        result = await (self._run_and_wait if self.durability.waits else self._run)(
            scripts.commit,
            self._keys.room(room_id).all(),
            epoch,
            max(history, 0),
            commit.inbound_offset,
            commit.snapshot,
            "" if commit.players is None else commit.players,
            "" if commit.ended is None else "1",
            first,
            len(events),
            _encode(published),
            _encode(receipts) if receipts else b"",
            len(joined),
            len(removed),
            _LOG_KEEP,
            *joined,
            *removed,
            *(_encode(event) for event in events),
        )
        code = result[0]
        if code == 1:
            raise _stale(room_id, epoch, result[1])
        if code == 2:
            raise CommitConflictError(
                f"room {room_id!r}: first event seq {first} does not continue the sequence "
                f"(last committed: {result[1]}); reload the room and retry"
            )
        if code == 3:
            raise CommitConflictError(
                f"room {room_id!r}: inbound offset {commit.inbound_offset} is outside "
                f"{result[1]}..{result[2]} (committed..appended)"
            )
        if commit.ended is not None:
            self._draining.pop(room_id, None)
        if len(result) == 3:  # ended: the room's keys are gone; now its registry entry
            await self._unregister(room_id, result[2].decode())

    async def read_events(self, room_id: str, after: int, limit: int | None = None) -> Sequence[OutEvent]:
        """Committed events with seq > after; HistoryGoneError when some are out of the window.

        Raises RoomNotFoundError.
        """
        scripts = self._open_scripts()
        after = max(after, 0)
        count = 0 if limit is None else max(limit, 1)  # 0: no limit (events.lua)
        found = await self._run(scripts.events, self._keys.room(room_id).all(), after, count)
        if found == -1:
            raise _not_found(room_id)
        last_seq, entries = found
        if not entries:
            if after < last_seq:
                raise _history_gone(room_id, after, last_seq + 1)
            return []
        first = entry_number(entries[0][0])
        if first != after + 1:
            raise _history_gone(room_id, after, first)
        return [_decode_event(entry_fields(raw)[b"e"]) for _, raw in entries]

    def subscribe(self, room_id: str, callback: Callable[[Published], None]) -> Unsubscribe:
        """Deliver each later commit of the room to `callback` once, in order, after it is durable.

        Called from the backend's pub/sub reader task; a callback that raises is logged.
        """
        return self._open_live().subscribe(room_id, callback)

    async def _settle(self, room_id: str, *, wake: bool) -> None:
        await self._open_live().settle(room_id, wake=wake)

    # --- key-value for lobby data -------------------------------------------------------------

    async def kv_get(self, key: str) -> bytes | None:
        """The value stored under key, or None."""
        client = self._open_client()
        async with engine_call():
            return cast(bytes | None, await client.get(self._keys.kv(key)))

    async def kv_set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store value under key, expiring after ttl_s seconds when given."""
        client = self._open_client()
        async with engine_call():
            if ttl_s is None:
                await client.set(self._keys.kv(key), value)
            elif ttl_s <= 0:
                await client.delete(self._keys.kv(key))
            else:
                await client.set(self._keys.kv(key), value, px=_ms(ttl_s))

    async def kv_delete(self, key: str) -> None:
        """Remove key (no-op when absent)."""
        client = self._open_client()
        async with engine_call():
            await client.delete(self._keys.kv(key))

    async def kv_scan(self, prefix: str) -> dict[str, bytes]:
        """Every live entry whose key starts with prefix (SCAN over every primary, then GETs)."""
        client = self._open_client()
        pattern, strip = self._keys.kv_pattern(prefix), len(self._keys.kv(""))
        async with engine_call(_DROP_TIMEOUT_S):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if not keys:
                return {}
            # cast: redis-py types replies as bytes | str; without decode_responses they are bytes.
            values: list[bytes | None]
            if isinstance(client, Redis):
                values = cast(list[bytes | None], await client.mget(keys))
            else:  # the keys live in different slots: one GET each, concurrently
                values = cast(list[bytes | None], await asyncio.gather(*(client.get(k) for k in keys)))
        # A key that expired between SCAN and GET reads as None: it is not live any more.
        return {
            key.decode()[strip:]: value for key, value in zip(keys, values, strict=True) if value is not None
        }


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _stale(room_id: str, epoch: int, current: bytes) -> StaleLeaseError:
    return StaleLeaseError(
        f"epoch {epoch} of room {room_id!r} is stale (current: {current.decode() or 'none'}); "
        "another worker owns the room now: drop its in-memory state"
    )


def _history_gone(room_id: str, after: int, oldest: int) -> HistoryGoneError:
    return HistoryGoneError(
        f"room {room_id!r} keeps events from seq {oldest} on; events after {after} are gone: "
        "rejoin the room instead of resuming"
    )
