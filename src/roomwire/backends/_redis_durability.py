"""Redis durability options of a backend URL, and the server settings checked when it opens.

URL options (all optional; docs/backends.md, "Durability"):

    wait_replicas=N      after each commit, WAIT until N replicas have it (or wait_timeout_ms)
    wait_timeout_ms=M    how long a commit waits for them (default 1000)
    waitaof=1            after each commit, WAITAOF until the primary's AOF is fsynced (and the
                         N replicas' AOF, with wait_replicas); needs Redis 7.2 or later
    allow_eviction=1     start even when `maxmemory-policy` may evict roomwire's keys (warn only)

The wait runs on the connection that ran the commit script (WAIT and WAITAOF count that
connection's writes), after the script: the commit script publishes the commit itself, so a
client may see a commit's events up to `wait_timeout_ms` before the wait confirms them. What it
bounds is the loss on a failover or power loss to the commit in flight in each room, since a room
never commits again before its previous commit was confirmed (or the wait timed out, logged).

Eviction: with `maxmemory` set, a policy other than `noeviction` lets Redis delete keys to make
room. `allkeys-*` may delete any of roomwire's keys (a room's state, its history, the lease epoch
counter: fencing breaks), so the backend refuses to open. `volatile-*` deletes only keys with a
TTL; roomwire's TTL keys are gateway presence (a deleted one makes workers disconnect that
gateway's players), worker reports and lobby data written with a ttl: it opens with a warning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from redis import exceptions as rex

from roomwire.backends._redis_client import engine_call
from roomwire.errors import SetupError

__all__ = [
    "DurabilityOptions",
    "Eviction",
    "WaitMonitor",
    "check_eviction",
    "check_version",
    "eviction_verdict",
    "read_server_settings",
    "wait_command",
    "waited_enough",
]

log = logging.getLogger("roomwire.backends.redis")

Eviction = Literal["ok", "warn", "refuse"]
_WARN_EVERY_S = 10.0
_MIN_WAITAOF = (7, 2)


@dataclass(frozen=True)
class DurabilityOptions:
    """What the URL asks for beyond Redis' own persistence settings."""

    wait_replicas: int = 0
    wait_timeout_ms: int = 1000
    waitaof: bool = False
    allow_eviction: bool = False

    @classmethod
    def pop_from(cls, query: dict[str, str]) -> DurabilityOptions:
        """Take roomwire's options out of a URL's query (the rest goes to redis-py)."""
        replicas = _int(query.pop("wait_replicas", "0"), "wait_replicas", 0)
        timeout = _int(query.pop("wait_timeout_ms", "1000"), "wait_timeout_ms", 1)
        waitaof = _flag(query.pop("waitaof", "0"), "waitaof")
        allow = _flag(query.pop("allow_eviction", "0"), "allow_eviction")
        return cls(replicas, timeout, waitaof, allow)

    @property
    def waits(self) -> bool:
        """True when every commit is followed by WAIT or WAITAOF."""
        return self.waitaof or self.wait_replicas > 0


def _int(value: str, name: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SetupError(f"Redis URL option {name}={value!r}: use an integer >= {minimum}")
    return number


def _flag(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise SetupError(f"Redis URL option {name}={value!r}: use 1 or 0")


def wait_command(options: DurabilityOptions) -> tuple[Any, ...]:
    """The command that follows each commit on its connection."""
    if options.waitaof:
        return ("WAITAOF", 1, options.wait_replicas, options.wait_timeout_ms)
    return ("WAIT", options.wait_replicas, options.wait_timeout_ms)


class WaitMonitor:
    """Logs commits whose wait timed out, at most once per _WARN_EVERY_S (the commit stands)."""

    def __init__(self, options: DurabilityOptions) -> None:
        self._options = options
        self._short = 0
        self._warned_at = 0.0

    def check(self, room_id: str, answer: Any) -> None:
        """Count a wait that confirmed less than asked; warn now and then."""
        if waited_enough(self._options, answer):
            return
        self._short += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "%d commit(s) not confirmed within %d ms (last: %s, %s answered %r, wanted %s); "
                "they stand on the primary but may be lost if it fails now",
                self._short,
                self._options.wait_timeout_ms,
                room_id,
                wait_command(self._options)[0],
                answer,
                _wanted(self._options),
            )
            self._short = 0


def waited_enough(options: DurabilityOptions, answer: Any) -> bool:
    """Whether the WAIT / WAITAOF answer confirms what the options ask for."""
    if options.waitaof:
        local, replicas = (int(n) for n in answer)
        return local >= 1 and replicas >= options.wait_replicas
    return int(answer) >= options.wait_replicas


def _wanted(options: DurabilityOptions) -> str:
    if options.waitaof:
        return f"[1, {options.wait_replicas}]"
    return str(options.wait_replicas)


def eviction_verdict(policy: str, maxmemory: int) -> tuple[Eviction, str]:
    """Whether Redis may evict roomwire's keys under this `maxmemory-policy` and `maxmemory`."""
    if policy == "noeviction":
        return "ok", "maxmemory-policy is noeviction: Redis refuses writes when full, never deletes"
    if maxmemory == 0:
        # No limit (64-bit): the policy never runs. Setting maxmemory later arms it.
        return "ok", f"maxmemory is 0 (no limit), so maxmemory-policy {policy} never evicts"
    if policy.startswith("volatile-"):
        return "warn", (
            f"maxmemory-policy is {policy} with maxmemory {maxmemory}: when memory is full Redis may "
            "delete roomwire's keys that have a TTL: gateway presence (its players are then "
            "disconnected), worker reports and lobby data set with a ttl; set noeviction"
        )
    return "refuse", (
        f"maxmemory-policy is {policy} with maxmemory {maxmemory}: when memory is full Redis may "
        "delete any of roomwire's keys (room state, history, the lease epoch counter: fencing "
        "breaks); set `maxmemory-policy noeviction`, or add allow_eviction=1 to the URL to start anyway"
    )


def check_eviction(settings: list[tuple[str, int]], options: DurabilityOptions) -> None:
    """Refuse (SetupError) or warn when a node's eviction settings can delete roomwire's keys."""
    for policy, maxmemory in settings:
        verdict, why = eviction_verdict(policy, maxmemory)
        if verdict == "refuse" and not options.allow_eviction:
            raise SetupError(f"Redis may evict roomwire's data: {why}")
        if verdict != "ok":
            log.warning("Redis may evict roomwire's data: %s", why)


def check_version(version: str, options: DurabilityOptions) -> None:
    """Refuse waitaof=1 on a server that has no WAITAOF (before 7.2)."""
    if not options.waitaof:
        return
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # an unknown version string: let the first WAITAOF say
    if (major, minor) < _MIN_WAITAOF:
        raise SetupError(
            f"waitaof=1 needs Redis 7.2 or later (WAITAOF); this server is {version}. "
            "Use appendfsync always, or wait_replicas=N"
        )


async def read_server_settings(client: Any, is_cluster: bool, options: DurabilityOptions) -> None:
    """Check the server(s) at open: eviction policy, and WAITAOF / WAIT support for the options.

    CONFIG may be disabled or renamed (managed Redis): then the eviction check is skipped with a
    log line, since roomwire cannot tell.
    """
    if options.waits and is_cluster:
        raise SetupError(
            "wait_replicas / waitaof are not supported on a Redis Cluster yet: a commit's WAIT must "
            "run on the room's node"
        )
    async with engine_call():
        if options.waitaof:
            info = await client.info("server")
            check_version(str(info.get("redis_version", "")), options)
        try:
            if is_cluster:
                answers = await client.config_get("maxmemory*", target_nodes=client.PRIMARIES)
                nodes = list(answers.values()) if _per_node(answers) else [answers]
            else:
                nodes = [await client.config_get("maxmemory*")]
        except rex.ResponseError as exc:
            log.info("cannot read Redis' maxmemory-policy (%s); make sure it is noeviction", exc)
            return
    settings = [(_text(n.get("maxmemory-policy", "noeviction")), int(n.get("maxmemory", 0))) for n in nodes]
    check_eviction(settings, options)


def _per_node(answers: dict[Any, Any]) -> bool:
    return bool(answers) and all(isinstance(v, dict) for v in answers.values())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
