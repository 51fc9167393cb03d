"""Connecting the Redis backend: client options, cluster detection, error mapping, pub/sub routing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from roomwire.backends._errors import engine_error
from roomwire.backends._redis_pubsub import NodeRouter
from roomwire.errors import BackendUnavailableError

__all__ = ["CALL_TIMEOUT_S", "Client", "Connected", "EngineCall", "connect", "engine_call"]

CALL_TIMEOUT_S = 10.0  # an engine call that takes longer: BackendUnavailableError

Client = Redis | RedisCluster

_UNAVAILABLE = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.SlotNotCoveredError,
    rex.ReadOnlyError,  # a replica promoted / demoted under us
    OSError,
    TimeoutError,
)
_REFUSED = (rex.AuthenticationError, rex.AuthorizationError, rex.NoPermissionError)
_FAILED = (rex.RedisError, rex.RedisClusterException)


def engine_call(timeout_s: float = CALL_TIMEOUT_S) -> EngineCall:
    """Map redis errors to roomwire's, and bound the call's time: `async with engine_call(): ...`.

    Time is bounded here, with asyncio.timeout, rather than by redis-py's socket_timeout: with a
    socket_timeout redis-py writes through asyncio.wait_for, which on Python 3.11 loses a
    cancellation that lands as the write completes (the caller's task then runs on).
    """
    return EngineCall(timeout_s)


class EngineCall:
    """The context manager engine_call() returns; a class, as it wraps every command of the hot path."""

    __slots__ = ("_timeout", "_timeout_s")

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._timeout = asyncio.timeout(timeout_s)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as timed_out:
            raise BackendUnavailableError(
                f"redis did not answer within {self._timeout_s} s; retry later"
            ) from timed_out
        if exc is not None:
            mapped = engine_error(exc, "redis", unavailable=_UNAVAILABLE, failed=_FAILED, refused=_REFUSED)
            if mapped is not None:
                raise mapped from exc


@dataclass(frozen=True, slots=True)
class Connected:
    """An open client, and how its pub/sub connections are routed."""

    client: Client
    router: NodeRouter
    is_cluster: bool


async def connect(url: str, *, force_cluster: bool | None, pubsub_client_name: str) -> Connected:
    """Open a client for `url`: a RedisCluster when the server runs in cluster mode (or forced).

    Raises BackendUnavailableError when Redis cannot be reached.
    """
    options: dict[str, Any] = {
        "protocol": 2,
        "socket_timeout": None,  # see engine_call()
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),  # a retried write could apply twice: the caller decides
    }
    client: Client | None = None
    try:
        async with engine_call():
            is_cluster = force_cluster
            if is_cluster is None:
                probe = Redis.from_url(url, **options)
                try:
                    info = await probe.info("cluster")
                finally:
                    await probe.aclose()
                is_cluster = str(info.get("cluster_enabled", 0)) == "1"
            if is_cluster:
                cluster = RedisCluster.from_url(url, max_connections=1000, **options)
                client = cluster
                await cluster.initialize()
                return Connected(cluster, _ClusterRouter(cluster, pubsub_client_name), True)
            # Each waiting read_inputs holds a pooled connection (one per running room); redis-py's
            # default cap of 100 made workers with more rooms fail with MaxConnectionsError.
            standalone = Redis.from_url(url, health_check_interval=30, max_connections=10_000, **options)
            client = standalone
            await standalone.ping()
            return Connected(standalone, _StandaloneRouter(standalone, pubsub_client_name), False)
    except BaseException:
        if client is not None:
            await client.aclose()
        raise


class _StandaloneRouter:
    """Every channel is served by the one server."""

    def __init__(self, client: Redis, client_name: str) -> None:
        self._pool = client.connection_pool
        self._client_name = client_name

    def node_for(self, channel: bytes) -> str:
        return "server"

    def connection(self, node: str) -> AbstractConnection:
        kwargs = dict(self._pool.connection_kwargs)
        kwargs["health_check_interval"] = 0  # its PINGs would be read as pub/sub messages
        kwargs["client_name"] = self._client_name
        return self._pool.connection_class(**kwargs)

    async def refresh(self) -> None:
        return None


class _ClusterRouter:
    """A channel is served by the primary of its hash slot."""

    def __init__(self, client: RedisCluster, client_name: str) -> None:
        self._client = client
        self._client_name = client_name

    def node_for(self, channel: bytes) -> str:
        node = self._client.get_node_from_key(channel.decode())
        if node is None:
            raise rex.SlotNotCoveredError(f"no cluster node serves channel {channel!r}")
        return str(node.name)

    def connection(self, node: str) -> AbstractConnection:
        found = self._client.get_node(node_name=node)
        if found is None:
            raise rex.ConnectionError(f"cluster node {node} is gone")
        kwargs = dict(found.connection_kwargs)
        kwargs["health_check_interval"] = 0
        kwargs["client_name"] = self._client_name
        return cast(AbstractConnection, found.connection_class(**kwargs))

    async def refresh(self) -> None:
        await self._client.nodes_manager.initialize()
