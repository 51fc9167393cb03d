"""The embedded backend's SQLite file: a write-through journal of the in-memory rooms.

The embedded backend keeps its working state in memory and writes every change here before it
applies it, so reopening the file rebuilds the same state. One process owns the file.

Schema (every table is keyed by the backend's namespace, so namespaces can share a file):

    rw_meta(ns, key, value)          counters: `epoch` (the last lease epoch handed out)
    rw_rooms(ns, id, record, players, inbound_offset, last_seq, snapshot,
             lease_owner, lease_epoch, lease_expires, hibernating)
                                     one row per live room; rowid order = registration order
    rw_inputs(ns, room, offset, body)        inbound inputs not yet consumed by a commit
    rw_events(ns, room, seq, body)           the kept history window of outbound events
    rw_seats(ns, room, player, expires)      seat reservations (expires) and seated players
                                             (expires NULL: joined, until `removed`)
    rw_kv(ns, key, value, expires)           lobby key-value data

Durability: WAL journal with synchronous=NORMAL by default. A transaction is written to the WAL
before the call returns, so it survives the process crashing; an OS crash or power loss can lose
the transactions since the last checkpoint, never corrupt the file. With synchronous=FULL
(`sqlite:///path?synchronous=full`) every commit fsyncs the WAL before it returns, so it also
survives an OS crash or power loss, at the cost of one fsync per commit (docs/backends.md).
Writes run directly on the event loop's thread: a small write costs about 20-40 µs there,
against 100-200 µs for a hop to a thread. WAL checkpoints (which fsync and can take ~10 ms)
run in a background thread on a second connection instead of inside a write
(`wal_autocheckpoint=0`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from roomwire.backends.records import Commit, Input, OutEvent, RoomRecord
from roomwire.errors import BackendError, BackendUnavailableError, SetupError

logger = logging.getLogger("roomwire.backends.embedded")

SCHEMA_VERSION = 2  # 2: rw_rooms.hibernating (files of version 1 are migrated on open)
# Checkpoint once this many write transactions accumulated, or after CHECKPOINT_DELAY_S.
CHECKPOINT_EVERY_WRITES = 500
CHECKPOINT_DELAY_S = 1.0
BUSY_TIMEOUT_S = 2.0
Synchronous = Literal["normal", "full"]
SYNCHRONOUS: tuple[Synchronous, ...] = ("normal", "full")


def parse_synchronous(value: str) -> Synchronous:
    """The `synchronous` setting a URL names; SetupError for anything but normal or full."""
    for known in SYNCHRONOUS:
        if value.lower() == known:
            return known
    raise SetupError(f"synchronous={value!r}: use one of {', '.join(SYNCHRONOUS)}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS rw_meta (
    ns TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rw_rooms (
    ns TEXT NOT NULL, id TEXT NOT NULL, record BLOB NOT NULL, players INTEGER NOT NULL,
    inbound_offset INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0, snapshot BLOB,
    lease_owner TEXT, lease_epoch INTEGER, lease_expires REAL,
    hibernating INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ns, id));
CREATE TABLE IF NOT EXISTS rw_inputs (
    ns TEXT NOT NULL, room TEXT NOT NULL, offset INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (ns, room, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rw_events (
    ns TEXT NOT NULL, room TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (ns, room, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rw_seats (
    ns TEXT NOT NULL, room TEXT NOT NULL, player TEXT NOT NULL, expires REAL,
    PRIMARY KEY (ns, room, player)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rw_kv (
    ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires REAL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
"""

_ROOM_TABLES = ("rw_inputs", "rw_events", "rw_seats")


@dataclass(slots=True)
class StoredRoom:
    """One room as read back from the file."""

    record: RoomRecord
    players: int
    inbound_offset: int
    last_seq: int
    snapshot: bytes | None
    lease: tuple[str, int, float] | None  # owner, epoch, expires (wall clock)
    inputs: list[tuple[int, Input]] = field(default_factory=list)
    events: list[OutEvent] = field(default_factory=list)
    reservations: dict[str, float] = field(default_factory=dict)
    seated: set[str] = field(default_factory=set)
    hibernating: bool = False


@dataclass(slots=True)
class StoredNamespace:
    """Everything of one namespace as read back from the file, rooms in registration order."""

    epoch: int
    rooms: dict[str, StoredRoom]
    kv: dict[str, tuple[bytes, float | None]]


@contextlib.contextmanager
def _engine_errors(path: str) -> Iterator[None]:
    """Turn sqlite3 errors into roomwire's BackendError tree (engine types never leave backends/)."""
    try:
        yield
    except sqlite3.OperationalError as exc:  # locked, busy, disk I/O, cannot open
        raise BackendUnavailableError(f"SQLite file {path!r} is not usable: {exc}") from exc
    except sqlite3.Error as exc:
        raise BackendError(f"SQLite file {path!r} failed: {exc}") from exc
    except msgspec.DecodeError as exc:  # ValidationError included: records of another version
        raise BackendError(
            f"SQLite file {path!r} holds records this roomwire cannot read ({exc}); "
            "use the roomwire version that wrote it, or a new file"
        ) from exc


def _close_all(conns: list[sqlite3.Connection]) -> None:
    for conn in conns:
        conn.close()


class SqliteStore:
    """Durable copy of one namespace in a SQLite file; every write method is one transaction."""

    def __init__(self, path: str, namespace: str, synchronous: Synchronous = "normal") -> None:
        parse_synchronous(synchronous)  # refuse a bad value here, not at the first write
        self.path = path
        self.ns = namespace
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self._enc = msgspec.msgpack.Encoder()
        self._input_dec = msgspec.msgpack.Decoder(Input)
        self._event_dec = msgspec.msgpack.Decoder(OutEvent)
        self._record_dec = msgspec.msgpack.Decoder(RoomRecord)
        self._writes = 0
        self._dirty = asyncio.Event()
        self._many = asyncio.Event()
        self._stopping = False
        self._checkpointer: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> StoredNamespace:
        """Open (or create) the file and read the namespace back; loading runs in a thread."""
        loaded = await asyncio.to_thread(self._open_sync)
        self._stopping = False
        self._checkpointer = asyncio.get_running_loop().create_task(
            self._checkpoint_loop(), name=f"roomwire-sqlite-checkpoint:{self.path}"
        )
        return loaded

    async def aclose(self) -> None:
        """Stop the checkpointer and close the file (the final checkpoint runs in a thread)."""
        self._stopping = True
        self._dirty.set()
        self._many.set()
        if self._checkpointer is not None:
            await self._checkpointer
            self._checkpointer = None
        conns = [c for c in (self._ckpt_conn, self._conn) if c is not None]
        self._conn = self._ckpt_conn = None
        # Closing the last connection checkpoints and removes the WAL: keep it off the loop.
        await asyncio.to_thread(_close_all, conns)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: opened in a thread, then used only from the loop's thread.
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")  # checked in __init__
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in the background thread
        return conn

    def _open_sync(self) -> StoredNamespace:
        with _engine_errors(self.path):
            conn = self._connect()
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, 1, SCHEMA_VERSION):
                    raise SetupError(
                        f"SQLite file {self.path!r} has schema version {version}; this roomwire "
                        f"reads version {SCHEMA_VERSION}: use a new file or a matching roomwire"
                    )
                conn.executescript(_SCHEMA)
                if version == 1:  # the table predates the hibernation mark
                    conn.execute("ALTER TABLE rw_rooms ADD COLUMN hibernating INTEGER NOT NULL DEFAULT 0")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                loaded = self._load(conn)
                self._ckpt_conn = self._connect()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            return loaded

    def _load(self, conn: sqlite3.Connection) -> StoredNamespace:
        ns = (self.ns,)
        row = conn.execute("SELECT value FROM rw_meta WHERE ns=? AND key='epoch'", ns).fetchone()
        rooms: dict[str, StoredRoom] = {}
        for rid, record, players, inbound, last_seq, snap, owner, epoch, expires, hib in conn.execute(
            "SELECT id, record, players, inbound_offset, last_seq, snapshot, lease_owner, lease_epoch,"
            " lease_expires, hibernating FROM rw_rooms WHERE ns=? ORDER BY rowid",
            ns,
        ):
            lease = (owner, epoch, expires) if epoch is not None else None
            rooms[rid] = StoredRoom(
                self._record_dec.decode(record),
                players,
                inbound,
                last_seq,
                snap,
                lease,
                hibernating=bool(hib),
            )
        for rid, offset, body in conn.execute(
            "SELECT room, offset, body FROM rw_inputs WHERE ns=? ORDER BY room, offset", ns
        ):
            if rid in rooms:  # rows of a room are deleted with it; never orphaned, but be sure
                rooms[rid].inputs.append((offset, self._input_dec.decode(body)))
        for rid, body in conn.execute("SELECT room, body FROM rw_events WHERE ns=? ORDER BY room, seq", ns):
            if rid in rooms:
                rooms[rid].events.append(self._event_dec.decode(body))
        for rid, player, expires in conn.execute("SELECT room, player, expires FROM rw_seats WHERE ns=?", ns):
            if rid not in rooms:
                continue
            if expires is None:
                rooms[rid].seated.add(player)
            else:
                rooms[rid].reservations[player] = expires
        kv = {
            key: (value, expires)
            for key, value, expires in conn.execute("SELECT key, value, expires FROM rw_kv WHERE ns=?", ns)
        }
        return StoredNamespace(row[0] if row else 0, rooms, kv)

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database in a thread, so a write never pays for a checkpoint."""
        while not self._stopping:
            await self._dirty.wait()
            with contextlib.suppress(TimeoutError):
                # Let writes accumulate for a while, unless there are many already.
                await asyncio.wait_for(self._many.wait(), CHECKPOINT_DELAY_S)
            self._dirty.clear()
            self._many.clear()
            self._writes = 0
            conn = self._ckpt_conn
            if conn is None or self._stopping:
                return
            try:
                await asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                logger.exception("WAL checkpoint of %s failed; will retry after the next write", self.path)

    # --- writes (each one transaction, run on the loop's thread) -------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendUnavailableError(f"the SQLite file {self.path!r} is closed; call open() first")
        return self._conn

    def _wrote(self) -> None:
        self._writes += 1
        if not self._dirty.is_set():
            self._dirty.set()
        if self._writes >= CHECKPOINT_EVERY_WRITES:
            self._many.set()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._db()
        with _engine_errors(self.path):
            conn.execute("BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self._wrote()

    def create_room(self, record: RoomRecord, first_input: Input) -> None:
        """Insert the room row and its first input (offset 1)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO rw_rooms (ns, id, record, players) VALUES (?, ?, ?, ?)",
                (self.ns, record.id, self._enc.encode(record), record.players),
            )
            db.execute(
                "INSERT INTO rw_inputs VALUES (?, ?, 1, ?)",
                (self.ns, record.id, self._enc.encode(first_input)),
            )

    def delete_room(self, room_id: str) -> None:
        """Remove the room row and every row that belongs to the room."""
        with self._transaction() as db:
            self._delete_room(db, room_id)

    def _delete_room(self, db: sqlite3.Connection, room_id: str) -> None:
        db.execute("DELETE FROM rw_rooms WHERE ns=? AND id=?", (self.ns, room_id))
        for table in _ROOM_TABLES:
            db.execute(f"DELETE FROM {table} WHERE ns=? AND room=?", (self.ns, room_id))

    def append_input(self, room_id: str, offset: int, item: Input) -> None:
        """Store one inbound input (a single autocommitted INSERT: the hot path)."""
        db = self._db()
        with _engine_errors(self.path):
            db.execute(
                "INSERT INTO rw_inputs VALUES (?, ?, ?, ?)",
                (self.ns, room_id, offset, self._enc.encode(item)),
            )
        self._wrote()

    def set_lease(self, room_id: str, owner: str | None, epoch: int | None, expires: float | None) -> None:
        """Set (or clear, with None) the room's lease; a new epoch also advances the counter.

        Setting a lease clears the room's hibernation mark.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE rw_rooms SET lease_owner=?, lease_epoch=?, lease_expires=?,"
                " hibernating=CASE WHEN ? IS NULL THEN hibernating ELSE 0 END WHERE ns=? AND id=?",
                (owner, epoch, expires, owner, self.ns, room_id),
            )
            if epoch is not None:
                db.execute(
                    "INSERT INTO rw_meta VALUES (?, 'epoch', ?)"
                    " ON CONFLICT (ns, key) DO UPDATE SET value=max(value, excluded.value)",
                    (self.ns, epoch),
                )

    def hibernate(self, room_id: str) -> None:
        """Clear the room's lease and mark it hibernating, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "UPDATE rw_rooms SET lease_owner=NULL, lease_epoch=NULL, lease_expires=NULL, hibernating=1"
                " WHERE ns=? AND id=?",
                (self.ns, room_id),
            )

    def set_seats(
        self, room_id: str, put: Iterable[tuple[str, float | None]], drop: Iterable[str] = ()
    ) -> None:
        """Store reservations (expires) or seated players (None), and drop others."""
        with self._transaction() as db:
            self._set_seats(db, room_id, put, drop)

    def _set_seats(
        self,
        db: sqlite3.Connection,
        room_id: str,
        put: Iterable[tuple[str, float | None]],
        drop: Iterable[str],
    ) -> None:
        db.executemany(
            "DELETE FROM rw_seats WHERE ns=? AND room=? AND player=?",
            [(self.ns, room_id, p) for p in drop],
        )
        db.executemany(
            "INSERT OR REPLACE INTO rw_seats VALUES (?, ?, ?, ?)",
            [(self.ns, room_id, p, exp) for p, exp in put],
        )

    def commit(
        self,
        room_id: str,
        commit: Commit,
        last_seq: int,
        keep_from_seq: int | None,
        drop_inputs: bool,
        seated: Sequence[str],
        unseated: Sequence[str],
    ) -> None:
        """Write one journal step: snapshot, offsets, events, seats.

        Events before `keep_from_seq` are trimmed (None: nothing to trim); with `drop_inputs`,
        the inputs up to the committed offset are deleted. A commit with `ended` removes the
        room instead, in the same single transaction.
        """
        with self._transaction() as db:
            if commit.ended is not None:
                self._delete_room(db, room_id)
                return
            db.execute(
                "UPDATE rw_rooms SET snapshot=?, inbound_offset=?, last_seq=?,"
                " players=coalesce(?, players) WHERE ns=? AND id=?",
                (commit.snapshot, commit.inbound_offset, last_seq, commit.players, self.ns, room_id),
            )
            if commit.events:
                db.executemany(
                    "INSERT INTO rw_events VALUES (?, ?, ?, ?)",
                    [(self.ns, room_id, e.seq, self._enc.encode(e)) for e in commit.events],
                )
            if keep_from_seq is not None:
                db.execute(
                    "DELETE FROM rw_events WHERE ns=? AND room=? AND seq<?", (self.ns, room_id, keep_from_seq)
                )
            if drop_inputs:  # consumed: recovery resumes after the committed offset
                db.execute(
                    "DELETE FROM rw_inputs WHERE ns=? AND room=? AND offset<=?",
                    (self.ns, room_id, commit.inbound_offset),
                )
            if seated or unseated:
                self._set_seats(db, room_id, [(p, None) for p in seated], unseated)

    def kv_set(self, key: str, value: bytes, expires: float | None) -> None:
        """Store one key."""
        db = self._db()
        with _engine_errors(self.path):
            db.execute("INSERT OR REPLACE INTO rw_kv VALUES (?, ?, ?, ?)", (self.ns, key, value, expires))
        self._wrote()

    def kv_delete(self, keys: Iterable[str]) -> None:
        """Remove keys (absent ones are ignored)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM rw_kv WHERE ns=? AND key=?", [(self.ns, k) for k in keys])

    def drop_namespace(self) -> None:
        """Delete every row of the namespace, counters included."""
        with self._transaction() as db:
            for table in ("rw_meta", "rw_rooms", "rw_kv", *_ROOM_TABLES):
                db.execute(f"DELETE FROM {table} WHERE ns=?", (self.ns,))
