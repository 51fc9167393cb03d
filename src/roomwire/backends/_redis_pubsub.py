"""Pub/sub for the Redis backend: one connection per Redis node, shared by every subscription.

redis-py's PubSub re-subscribes silently after a reconnect, so its owner cannot tell that
messages were lost in between. This hub owns its connections instead and reports every
(re)activation of a channel through `on_active`, which the room feeds answer by filling the
gap from the streams (`_redis_feed.py`). Per message the cost is one dict lookup, whatever the
number of channels.

Standalone Redis: one connection. Cluster: one connection per node that owns a subscribed
channel's slot (sharded pub/sub is served by the slot's node only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisClusterException, RedisError

__all__ = ["NodeRouter", "PubSubHub"]

logger = logging.getLogger("roomwire.backends.redis")

_SEND_TIMEOUT_S = 10.0
_IDLE_PING_S = 15.0  # an idle link sends PING after this long; no answer within as long: dead
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
_LINK_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


class NodeRouter(Protocol):
    """Which node serves a channel, and how to open a connection to it."""

    def node_for(self, channel: bytes) -> str:
        """The name of the node that serves `channel` (its slot's primary on a cluster)."""

    def connection(self, node: str) -> AbstractConnection:
        """A new, unconnected connection to `node`."""

    async def refresh(self) -> None:
        """Re-read the cluster topology (after a failure); no-op on a standalone server."""


class _Link:
    """One pub/sub connection to one node and its reader task."""

    def __init__(self, node: str, conn: AbstractConnection) -> None:
        self.node = node
        self.conn = conn
        self.channels: set[bytes] = set()
        self.unsubscribing: Counter[bytes] = Counter()  # confirmations we asked for
        self.write_lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None

    async def send(self, *args: bytes) -> None:
        async with self.write_lock, asyncio.timeout(_SEND_TIMEOUT_S):
            await self.conn.send_command(*args, check_health=False)


class PubSubHub:
    """Keeps the wanted channels subscribed across reconnects and failovers."""

    def __init__(
        self,
        router: NodeRouter,
        on_message: Callable[[bytes, bytes], None],
        on_active: Callable[[bytes], None],
    ) -> None:
        self._router = router
        self._on_message = on_message
        self._on_active = on_active
        self._wanted: dict[bytes, bool] = {}  # channel -> sharded?
        self._links: dict[str, _Link] = {}
        self._link_of: dict[bytes, _Link] = {}
        self._connecting: dict[str, asyncio.Future[_Link]] = {}
        self._orphans: set[bytes] = set()  # wanted channels waiting to be resubscribed
        self._recovering = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def want(self, channel: bytes, *, sharded: bool) -> None:
        """Subscribe to `channel` (now and after every reconnect); `on_active` tells when it is."""
        self._wanted[channel] = sharded
        self._spawn(self._subscribe_or_recover(channel))

    def unwant(self, channel: bytes) -> None:
        """Stop receiving `channel`."""
        sharded = self._wanted.pop(channel, None)
        link = self._link_of.pop(channel, None)
        if link is None or sharded is None:
            return
        link.channels.discard(channel)
        link.unsubscribing[channel] += 1
        self._spawn(self._send_or_drop(link, b"SUNSUBSCRIBE" if sharded else b"UNSUBSCRIBE", channel))

    async def aclose(self) -> None:
        """Close every connection and stop every task."""
        self._closed = True
        links = list(self._links.values())
        tasks = list(self._tasks) + [link.reader for link in links if link.reader is not None]
        for task in tasks:
            task.cancel()
        for link in links:
            await self._close(link)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._links.clear()
        self._link_of.clear()

    # --- subscribing --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe_or_recover(self, channel: bytes) -> None:
        try:
            await self._subscribe(channel)
        except _LINK_ERRORS as exc:
            logger.warning("redis pub/sub: cannot subscribe %r yet (%s); retrying", channel, exc)
            self._recover([channel])

    async def _subscribe(self, channel: bytes) -> None:
        """Send the subscription of a wanted channel that no link carries yet."""
        if channel not in self._wanted or channel in self._link_of:
            return
        link = await self._link(self._router.node_for(channel))
        sharded = self._wanted.get(channel)
        if sharded is None or channel in self._link_of:
            return  # unwanted, or subscribed by someone else, while we connected
        self._link_of[channel] = link
        link.channels.add(channel)
        try:
            await link.send(b"SSUBSCRIBE" if sharded else b"SUBSCRIBE", channel)
        except _LINK_ERRORS as exc:
            self._drop(link, exc)

    async def _send_or_drop(self, link: _Link, *args: bytes) -> None:
        if self._links.get(link.node) is not link:
            return
        try:
            await link.send(*args)
        except _LINK_ERRORS as exc:
            self._drop(link, exc)

    async def _link(self, node: str) -> _Link:
        """The node's link, connecting it first when there is none (one connect at a time)."""
        link = self._links.get(node)
        if link is not None:
            return link
        pending = self._connecting.get(node)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Link] = asyncio.get_running_loop().create_future()
        self._connecting[node] = future
        try:
            conn = self._router.connection(node)
            await conn.connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            link = _Link(node, conn)
            link.reader = asyncio.get_running_loop().create_task(self._read(link))
            self._links[node] = link
            future.set_result(link)
            return link
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: waiters get it through `await`
            raise
        finally:
            del self._connecting[node]

    # --- reading ------------------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        """Dispatch what the node sends until the connection fails; then recover its channels."""
        pinged = False
        try:
            while True:
                response = await link.conn.read_response(timeout=_IDLE_PING_S)
                if response is None:  # idle: prove the connection is alive
                    if pinged:
                        raise TimeoutError(f"no answer to PING from {link.node} within {_IDLE_PING_S} s")
                    await link.send(b"PING")
                    pinged = True
                    continue
                pinged = False
                self._dispatch(link, response)
        except _LINK_ERRORS as exc:
            self._drop(link, exc)

    def _dispatch(self, link: _Link, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # PONG
        kind, channel = response[0], response[1]
        if kind in (b"smessage", b"message"):
            self._on_message(channel, response[2])
        elif kind in (b"ssubscribe", b"subscribe"):
            if self._link_of.get(channel) is link:
                self._on_active(channel)
        elif kind in (b"sunsubscribe", b"unsubscribe"):
            if link.unsubscribing[channel] > 0:
                link.unsubscribing[channel] -= 1
                if not link.unsubscribing[channel]:
                    del link.unsubscribing[channel]
            elif self._link_of.get(channel) is link:
                # The server dropped it: its slot moved to another node. Find the new owner.
                del self._link_of[channel]
                link.channels.discard(channel)
                self._recover([channel])

    # --- failures -----------------------------------------------------------------------------

    def _drop(self, link: _Link, exc: BaseException) -> None:
        """Forget a failed link and resubscribe its channels elsewhere (idempotent)."""
        if self._links.get(link.node) is not link:
            return
        del self._links[link.node]
        channels = list(link.channels)
        for channel in channels:
            if self._link_of.get(channel) is link:
                del self._link_of[channel]
        if link.reader is not None and link.reader is not asyncio.current_task():
            link.reader.cancel()
        self._spawn(self._close(link))
        if self._closed:
            return
        logger.warning(
            "redis pub/sub link to %s lost (%s); resubscribing %d channels", link.node, exc, len(channels)
        )
        self._recover(channels)

    @staticmethod
    async def _close(link: _Link) -> None:
        with contextlib.suppress(*_LINK_ERRORS):
            await link.conn.disconnect(nowait=True)

    def _recover(self, channels: list[bytes]) -> None:
        """Resubscribe `channels` soon; one recovery task serves every failure at a time."""
        self._orphans.update(channels)
        if not self._recovering and not self._closed:
            self._recovering = True
            self._spawn(self._recover_orphans())

    async def _recover_orphans(self) -> None:
        """Resubscribe the orphaned channels, backing off while the engine is unreachable."""
        delay = _BACKOFF_FIRST_S
        try:
            while self._orphans:
                try:
                    await self._router.refresh()
                    while self._orphans:
                        channel = self._orphans.pop()
                        try:
                            await self._subscribe(channel)
                        except BaseException:
                            self._orphans.add(channel)
                            raise
                    return
                except _LINK_ERRORS as exc:
                    logger.info("redis pub/sub: cannot resubscribe yet (%s); next try in %.2f s", exc, delay)
                # Backoff between reconnect attempts (not a wait for a condition).
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
        finally:
            self._recovering = False
