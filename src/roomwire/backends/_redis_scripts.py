"""The Redis backend's key layout and Lua scripts (backends/lua/*.lua, run with EVALSHA).

Every key of one room carries the hash tag `{r:<room id>}`, so a Redis Cluster keeps a room in
one slot and each room script touches one slot. Namespace-wide keys carry the tag `{<ns>}`.
Room scripts all take the same nine KEYS, in `RoomKeys` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.commands.core import AsyncScript

__all__ = ["NamespaceKeys", "RoomKeys", "Scripts", "entry_fields", "entry_number"]


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The keys of one room, in the order every room script expects them."""

    # hash: r record, t type, m max_players, p players, n last input offset, i incarnation,
    # E last lease epoch, h hibernating (1/0)
    meta: str
    inbound: str  # stream 0-<offset>: d encoded Input (x: tombstone of a deleted room)
    outbound: str  # stream 0-<seq>: e encoded OutEvent; the history window
    log: str  # stream 0-<commit number>: f first seq, n event count, r encoded receipts
    snap: str  # hash: b snapshot, o inbound offset, s last seq, c commit number
    lease: str  # hash: o owner, e epoch, x expiry (server ms)
    seats: str  # zset: player -> reservation expiry (server ms)
    members: str  # set: players seated by a `joined` receipt and not `removed` since
    channel: str  # sharded pub/sub channel: <incarnation>:<commit number>|<encoded Published>

    def all(self) -> list[str]:
        """The nine keys, as KEYS for a room script."""
        return [
            self.meta,
            self.inbound,
            self.outbound,
            self.log,
            self.snap,
            self.lease,
            self.seats,
            self.members,
            self.channel,
        ]


class NamespaceKeys:
    """Key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        shared = f"{namespace}:{{{namespace}}}"  # one slot for the registry index and counters
        self.rooms = f"{shared}:rooms"  # zset: room id -> registration number
        self.registered = f"{shared}:registered"  # counter behind registration numbers
        self.epoch = f"{shared}:epoch"  # counter behind every lease epoch (Promise 4)
        self.wake = f"{namespace}:wake"  # classic pub/sub channel: room ids with unread input

    def rooms_of_type(self, room_type: str) -> str:
        """The registry index of one room type."""
        return f"{self.rooms}:{room_type}"

    def room(self, room_id: str) -> RoomKeys:
        """The keys of one room."""
        p = f"{self.namespace}:{{r:{room_id}}}:"
        return RoomKeys(
            p + "meta",
            p + "in",
            p + "out",
            p + "log",
            p + "snap",
            p + "lease",
            p + "seats",
            p + "members",
            p + "ch",
        )

    def kv(self, key: str) -> str:
        """The key of a lobby kv entry."""
        return f"{self.namespace}:kv:{key}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key of the namespace."""
        return _glob_escape(self.namespace) + ":*"

    def kv_pattern(self, prefix: str) -> str:
        """A SCAN pattern matching the kv entries whose key starts with prefix."""
        return _glob_escape(self.kv(prefix)) + "*"


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class Scripts:
    """Every script of the backend, registered on one client (loaded on first use per node)."""

    def __init__(self, client: Redis | RedisCluster) -> None:
        def script(name: str) -> AsyncScript:
            source = files("roomwire.backends").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
            return client.register_script(source)

        self.create = script("create")
        self.append = script("append")
        self.read = script("read")
        self.reserve = script("reserve")
        self.room = script("room")
        self.acquire = script("acquire")
        self.renew = script("renew")
        self.release = script("release")
        self.hibernate = script("hibernate")
        self.due = script("due")
        self.load = script("load")
        self.commit = script("commit")
        self.events = script("events")
        self.delete = script("delete")
        self.fill = script("fill")
        self.register = script("register")
        self.unregister = script("unregister")


def entry_fields(raw: Any) -> dict[bytes, bytes]:
    """A stream entry's fields: a dict from redis-py's XREAD, a flat list from a script."""
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def entry_number(entry_id: bytes) -> int:
    """The <n> of a stream entry id 0-<n> (an offset, a seq or a commit number)."""
    return int(entry_id.partition(b"-")[2])
