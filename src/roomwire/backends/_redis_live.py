"""Live delivery for the Redis backend: room subscriptions and input watchers over one PubSubHub.

Each subscribed room has one RoomFeed (`_redis_feed.py`) whatever the number of its callbacks;
the hub calls back here with each message (one dict lookup to find the feed) and each
(re)activation of a channel (the feed then reads what it may have missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

import msgspec

from roomwire.backends._redis_feed import Fill, LoggedCommit, RoomFeed
from roomwire.backends._redis_pubsub import NodeRouter, PubSubHub
from roomwire.backends._redis_scripts import NamespaceKeys, RoomKeys, entry_fields, entry_number
from roomwire.backends.base import Unsubscribe
from roomwire.backends.records import OutEvent, Published, Receipt

__all__ = ["LiveDelivery"]

logger = logging.getLogger("roomwire.backends.redis")

_SETTLE_S = 5.0  # how long a write waits for this instance's pending subscriptions

_decode_event = msgspec.msgpack.Decoder(OutEvent).decode
_decode_receipts = msgspec.msgpack.Decoder(tuple[Receipt, ...]).decode

FetchRaw = Callable[[RoomKeys, int, int], Awaitable[Any]]  # runs fill.lua: (keys, after commit, after seq)


class LiveDelivery:
    """The subscriptions (`subscribe`) and input watchers (`watch_inputs`) of one backend."""

    def __init__(self, router: NodeRouter, keys: NamespaceKeys, fetch_raw: FetchRaw) -> None:
        self._keys = keys
        self._wake = keys.wake.encode()
        self._fetch_raw = fetch_raw
        self._hub = PubSubHub(router, self._on_message, self._on_active)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._feeds: dict[str, RoomFeed] = {}
        self._feed_of_channel: dict[bytes, RoomFeed] = {}
        self._watchers: tuple[Callable[[str], None], ...] = ()
        self._wake_ready: asyncio.Event | None = None
        self._closed = False

    async def aclose(self) -> None:
        """Stop delivering; close the pub/sub connections and tasks."""
        self._closed = True
        for feed in self._feeds.values():
            feed.close()
        self._feeds.clear()
        self._feed_of_channel.clear()
        self._watchers = ()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._hub.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe(self, room_id: str, callback: Callable[[Published], None]) -> Unsubscribe:
        """Deliver each later commit of the room to `callback`, once and in order."""
        feed = self._feeds.get(room_id)
        if feed is None:
            keys = self._keys.room(room_id)
            channel = keys.channel.encode()
            feed = RoomFeed(room_id, partial(self._fill, keys), self._spawn)
            self._feeds[room_id] = feed
            self._feed_of_channel[channel] = feed
            self._spawn(feed.start(partial(self._hub.want, channel, sharded=True)))
        feed.callbacks = (*feed.callbacks, callback)
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            callbacks = list(feed.callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
            feed.callbacks = tuple(callbacks)
            if not callbacks and self._feeds.get(room_id) is feed:
                channel = self._keys.room(room_id).channel.encode()
                del self._feeds[room_id]
                del self._feed_of_channel[channel]
                feed.close()
                self._hub.unwant(channel)

        return unsubscribe

    async def _fill(self, keys: RoomKeys, after_commit: int, after_seq: int) -> Fill | None:
        found = await self._fetch_raw(keys, after_commit, after_seq)
        if not found:
            return None
        incarnation, commit, last_seq, log, events = found
        logged = []
        for entry_id, raw in log:
            fields = entry_fields(raw)
            logged.append(
                LoggedCommit(
                    number=entry_number(entry_id),
                    first_seq=int(fields[b"f"]),
                    count=int(fields[b"n"]),
                    receipts=_decode_receipts(fields[b"r"]) if fields[b"r"] else (),
                )
            )
        return Fill(
            incarnation=incarnation,
            commit=int(commit),
            last_seq=int(last_seq),
            log=logged,
            events={entry_number(i): _decode_event(entry_fields(raw)[b"e"]) for i, raw in events},
        )

    # --- input watchers -----------------------------------------------------------------------

    def watch(self, callback: Callable[[str], None]) -> Unsubscribe:
        """Call `callback(room_id)` for each wakeup published on the namespace's wake channel."""
        self._watchers = (*self._watchers, callback)
        if self._wake_ready is None:
            self._wake_ready = asyncio.Event()
            self._hub.want(self._wake, sharded=False)
        done = False

        def unwatch() -> None:
            nonlocal done
            if done:
                return
            done = True
            watchers = list(self._watchers)
            if callback in watchers:
                watchers.remove(callback)
            self._watchers = tuple(watchers)
            if not watchers and self._wake_ready is not None:
                self._wake_ready = None
                self._hub.unwant(self._wake)

        return unwatch

    # --- dispatch -----------------------------------------------------------------------------

    def _on_message(self, channel: bytes, payload: bytes) -> None:
        if channel == self._wake:
            room_id = payload.decode()
            for callback in self._watchers:
                try:
                    callback(room_id)
                except Exception:
                    # One watcher's bug must not starve the others.
                    logger.exception("input watcher %r failed for room %s", callback, room_id)
            return
        feed = self._feed_of_channel.get(channel)
        if feed is not None:
            feed.on_message(payload)

    def _on_active(self, channel: bytes) -> None:
        if channel == self._wake:
            if self._wake_ready is not None:
                self._wake_ready.set()
            return
        feed = self._feed_of_channel.get(channel)
        if feed is not None:
            feed.on_active()

    async def settle(self, room_id: str, *, wake: bool) -> None:
        """Wait (bounded) until this instance's subscriptions that a write may notify are active.

        A write to `room_id` then reaches its subscribers here, and (with `wake`) the watchers.
        """
        pending = []
        feed = self._feeds.get(room_id)
        if feed is not None and not feed.ready.is_set():
            pending.append(feed.ready)
        if wake and self._wake_ready is not None and not self._wake_ready.is_set():
            pending.append(self._wake_ready)
        if not pending:
            return
        try:
            async with asyncio.timeout(_SETTLE_S):
                for ready in pending:
                    await ready.wait()
        except TimeoutError:
            logger.warning("room %s: writing before this instance's subscriptions are active", room_id)
