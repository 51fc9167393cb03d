"""The receive queue of one WebSocket connection: uvicorn's ASGI receive events, lighter and paused less.

uvicorn queues each received message in an asyncio.Queue and pauses reading the socket after
every one, resuming when the app takes it: two changes of the socket's poll registration per
message, and an asyncio.Queue (with its Event and three deques) per connection. This queue has
one list and at most one waiter, and the protocol pauses reading only when the app falls
behind by `PAUSE_FRAMES` messages or `PAUSE_BYTES` bytes, which still bounds what one
connection can make the server hold.
"""

from __future__ import annotations

import asyncio
from typing import Any

PAUSE_FRAMES = 16  # messages queued for the app before the socket stops being read
PAUSE_BYTES = 256 * 1024  # or this many bytes of message data


class InboundQueue:
    """A single-consumer queue of ASGI receive events, with the size of what it holds.

    A list read from `_head` on: emptied once the consumer catches up, it then holds no memory
    of its own (a deque keeps two blocks, ~1 KB, on every idle connection), and taking an item
    never moves the others.
    """

    __slots__ = ("_head", "_items", "_loop", "_waiter", "bytes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: list[tuple[Any, int]] = []
        self._head = 0
        self._waiter: asyncio.Future[None] | None = None
        self.bytes = 0

    def put_nowait(self, event: Any) -> None:
        """Queue an ASGI event and wake the consumer."""
        data = event.get("text") or event.get("bytes")
        size = len(data) if data else 0
        self._items.append((event, size))
        self.bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        """The oldest event, waiting for one when the queue is empty."""
        while self._head == len(self._items):
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        items, head = self._items, self._head
        event, size = items[head]
        if head + 1 == len(items):
            items.clear()
            self._head = 0
        else:
            items[head] = _TAKEN  # drop the reference now: the event may be large
            self._head = head + 1
        self.bytes -= size
        return event

    def is_waiting(self) -> bool:
        """True when the consumer is parked in get(): nothing is queued and it waits for the next."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def empty(self) -> bool:
        """True when nothing is queued."""
        return self._head == len(self._items)

    def qsize(self) -> int:
        """Events queued."""
        return len(self._items) - self._head

    def is_full(self) -> bool:
        """True when the socket should stop being read until the app catches up."""
        return len(self._items) - self._head >= PAUSE_FRAMES or self.bytes >= PAUSE_BYTES


_TAKEN: tuple[Any, int] = (None, 0)
