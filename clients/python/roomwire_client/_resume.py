"""Resume bookkeeping, free of I/O: message ids and pending messages, event de-dup, backoff, endpoints.

These are the parts of the reconnect algorithm of docs/protocol.md ("Resuming after a
disconnect") that can be stated as plain state transitions; connection.py and room.py drive them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from roomwire.protocol.frames import JSONValue

__all__ = ["Backoff", "Endpoints", "Outbox", "PendingMessage", "SeqFilter"]


@dataclass(slots=True)
class PendingMessage:
    """A message that was given an id and has had no ack or reject yet."""

    id: int
    type: str
    data: JSONValue
    wants_answer: bool = False  # a caller awaits its ack (Room.request)


@dataclass(slots=True)
class Outbox:
    """Client message ids of one room and the messages not yet answered.

    Ids are positive, strictly increasing per (player, room), and never reused: a resend keeps
    its id so the server can drop a duplicate (promise 2).
    """

    next_id: int = 1
    _pending: dict[int, PendingMessage] = field(default_factory=dict)

    def add(self, type: str, data: JSONValue, *, wants_answer: bool = False) -> PendingMessage:
        """Give a new message the next id and keep it until it is answered."""
        message = PendingMessage(self.next_id, type, data, wants_answer)
        self._pending[message.id] = message
        self.next_id += 1
        return message

    def resolve(self, msg_id: int) -> PendingMessage | None:
        """Forget the message an ack or reject answered; None if it was not pending (a late answer)."""
        return self._pending.pop(msg_id, None)

    def on_joined(self, last_id: int) -> list[PendingMessage]:
        """Apply `joined.last_id`; returns every pending message, to send again in this order.

        Even ids at or below `last_id` are resent: the room may have skipped such an id (refused
        before it reached the room, then a newer id was applied), and only the room can tell; it
        answers `ack {dup: true}` for those it consumed and applies the others (protocol §9).
        The ids continue after `last_id`, so that a player's earlier session in the same room
        cannot make new messages look like duplicates.
        """
        self.next_id = max(self.next_id, last_id + 1)
        return self.pending()

    def pending(self) -> list[PendingMessage]:
        """The unanswered messages in id order."""
        return sorted(self._pending.values(), key=lambda m: m.id)

    def drain(self) -> list[PendingMessage]:
        """Forget and return every pending message (the room is gone; fail them)."""
        pending = self.pending()
        self._pending.clear()
        return pending

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(slots=True)
class SeqFilter:
    """Passes each room event once, in order: drops any seq at or below the last one passed.

    Replays after a resume may overlap what was already received; the server never reorders,
    so "seq > last" is all it takes (promise 1: gaps are events addressed to other players).
    """

    last_seq: int = 0

    def accept(self, seq: int) -> bool:
        """True if the event with this seq is new and moves `last_seq` forward."""
        if seq <= self.last_seq:
            return False
        self.last_seq = seq
        return True

    def skip_to(self, seq: int) -> None:
        """Start after `seq` (a fresh join: events up to `joined.seq` are not for us)."""
        self.last_seq = max(self.last_seq, seq)


@dataclass(slots=True)
class Backoff:
    """Exponential reconnect delays with full jitter: 0 first, then up to initial_s * factor**n, capped."""

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0
    rand: Callable[[], float] = random.random
    _attempt: int = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; the first retry after a success is immediate."""
        attempt = self._attempt
        self._attempt += 1
        if attempt == 0:
            return 0.0
        ceiling = min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        return ceiling * self.rand()

    def reset(self) -> None:
        """A connection succeeded: the next failure retries immediately again."""
        self._attempt = 0


class Endpoints:
    """The server base URLs to try, in order; failover moves to the next one and wraps around."""

    __slots__ = ("_index", "_urls")

    def __init__(self, urls: str | Sequence[str]) -> None:
        listed = [urls] if isinstance(urls, str) else list(urls)
        if not listed:
            raise ValueError("give at least one server base URL, e.g. 'http://127.0.0.1:8000'")
        for url in listed:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"server base URL must start with http:// or https://, not {url!r}")
        self._urls = [u.rstrip("/") for u in listed]
        self._index = 0

    @property
    def current(self) -> str:
        """The base URL in use."""
        return self._urls[self._index]

    def advance(self) -> str:
        """Fail over to the next base URL and return it."""
        self._index = (self._index + 1) % len(self._urls)
        return self.current

    def rotation(self) -> Iterator[str]:
        """Each base URL once, starting with the current one; makes the one yielded current."""
        start = self._index
        for i in range(len(self._urls)):
            self._index = (start + i) % len(self._urls)
            yield self.current

    def __len__(self) -> int:
        return len(self._urls)

    def ws_url(self, ws_path: str) -> str:
        """The WebSocket URL for the current base URL: http→ws, https→wss, path appended."""
        base = self.current
        scheme = "wss://" if base.startswith("https://") else "ws://"
        return scheme + base.split("://", 1)[1] + "/" + ws_path.lstrip("/")
