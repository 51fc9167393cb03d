"""Builders and waiting helpers shared by the backend tests.

Imported by module name: tests/backends is on sys.path (pytest's prepend import mode puts each
conftest's folder there), while `import conftest` would be ambiguous.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from roomwire.backends.records import (
    Commit,
    CreateInput,
    MessageInput,
    OutEvent,
    Receipt,
    RoomRecord,
)

T = TypeVar("T")

NewRoom = Callable[..., Awaitable[str]]  # the `new_room` fixture: create a room, return its id

WAIT_S = 5.0  # upper bound for anything a test waits on; never reached when things work


def new_namespace() -> str:
    """A namespace no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


def room_id() -> str:
    """A fresh room id."""
    return f"room-{uuid.uuid4().hex[:10]}"


def record(rid: str, *, type: str = "arena", max_players: int = 4, **fields: Any) -> RoomRecord:
    """A registry record for a new room."""
    return RoomRecord(id=rid, type=type, max_players=max_players, created_at=1000.0, **fields)


def create_input(**options: Any) -> CreateInput:
    """The first input of a room."""
    return CreateInput(options=dict(options), at=1000.0)


def msg(n: int, player: str = "p1") -> MessageInput:
    """A game message carrying `n` (plain data, so it round-trips through any codec)."""
    return MessageInput(player=player, type="move", data={"n": n, "xy": [n, -n]}, id=n, at=1000.0 + n)


def events(first: int, count: int, *, type: str = "moved") -> tuple[OutEvent, ...]:
    """`count` consecutive events starting at seq `first`."""
    return tuple(OutEvent(seq=s, type=type, data={"s": s}) for s in range(first, first + count))


def step(
    offset: int,
    evs: tuple[OutEvent, ...] = (),
    *,
    receipts: tuple[Receipt, ...] = (),
    players: int | None = None,
    ended: str | None = None,
    snapshot: bytes | None = None,
) -> Commit:
    """A commit that consumed inputs up to `offset` and emits `evs`."""
    return Commit(
        snapshot=snapshot if snapshot is not None else f"state@{offset}".encode(),
        inbound_offset=offset,
        events=evs,
        receipts=receipts,
        ended=ended,
        players=players,
    )


def joined(player: str) -> Receipt:
    """The receipt a room gives a player whose join it accepted."""
    return Receipt(player=player, kind="joined", ref=f"join-{player}")


class Collector(Generic[T]):
    """A callback that records what it is called with and lets a test wait for a count."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def __call__(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[T]:
        """Wait until at least `count` items arrived; returns them all."""
        async with asyncio.timeout(timeout_s):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items

    async def wait_until(self, predicate: Callable[[list[T]], bool], timeout_s: float = WAIT_S) -> list[T]:
        """Wait until `predicate(items)` holds; returns the items."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = WAIT_S) -> None:
    """Poll a time-based condition (a ttl passing) until it holds.

    Only for expiry: a deadline passing is not an event anyone can signal, so this is the one
    place the suite polls with a short sleep.
    """
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"still false after {within_s} s"
        await asyncio.sleep(0.02)


async def hold_for(seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Assert a time-based condition keeps holding for `seconds` (e.g. a renewed lease stays held)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await check()
        await asyncio.sleep(0.02)
