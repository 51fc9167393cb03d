"""Redis durability options (WAIT after commits) and the eviction-policy check at open.

The shared Redis on 6379 is only read here (CONFIG GET, INFO): its configuration is never
changed. Settings that must differ (a replica, an evicting policy) use private servers started
on free ports.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from conformance_kit import create_input, events, new_namespace, record, room_id, step
from test_redis_restart import Server

from roomwire.backends._redis_durability import (
    DurabilityOptions,
    check_eviction,
    eviction_verdict,
    read_server_settings,
)
from roomwire.backends.redis import RedisBackend
from roomwire.errors import SetupError

SHARED = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("policy", "maxmemory", "verdict"),
    [
        ("noeviction", 0, "ok"),
        ("noeviction", 10**9, "ok"),
        ("allkeys-lru", 0, "ok"),  # no limit: the policy never runs
        ("volatile-lru", 10**9, "warn"),  # presence keys and lobby data with a ttl may go
        ("volatile-ttl", 10**9, "warn"),
        ("volatile-random", 10**9, "warn"),
        ("allkeys-lru", 10**9, "refuse"),  # room state and the epoch counter may go
        ("allkeys-lfu", 10**9, "refuse"),
        ("allkeys-random", 10**9, "refuse"),
    ],
)
def test_eviction_decision_table(policy: str, maxmemory: int, verdict: str) -> None:
    assert eviction_verdict(policy, maxmemory)[0] == verdict


def test_an_evicting_policy_is_refused_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SetupError, match="noeviction"):
        check_eviction([("noeviction", 0), ("allkeys-lru", 1 << 30)], DurabilityOptions())
    with caplog.at_level(logging.WARNING, "roomwire.backends.redis"):
        check_eviction([("allkeys-lru", 1 << 30)], DurabilityOptions(allow_eviction=True))
        check_eviction([("volatile-lru", 1 << 30)], DurabilityOptions())
    assert len([r for r in caplog.records if "may evict" in r.getMessage()]) == 2


@pytest.mark.parametrize(
    "query", ["wait_replicas=-1", "wait_replicas=x", "wait_timeout_ms=0", "waitaof=maybe"]
)
def test_bad_durability_options_are_refused(query: str) -> None:
    with pytest.raises(SetupError, match=query.split("=")[0]):
        RedisBackend(f"{SHARED}?{query}", namespace="n")


async def test_the_shared_servers_settings_are_read_and_judged(redis_up: None) -> None:
    client = aioredis.Redis.from_url(SHARED)
    try:
        answer = await client.config_get("maxmemory*")
        verdict, _ = eviction_verdict(str(answer["maxmemory-policy"]), int(answer["maxmemory"]))
        if verdict == "refuse":
            with pytest.raises(SetupError):
                await read_server_settings(client, False, DurabilityOptions())
        else:
            await read_server_settings(client, False, DurabilityOptions())
        version = str((await client.info("server"))["redis_version"])
    finally:
        await client.aclose()
    if tuple(int(p) for p in version.split(".")[:2]) >= (7, 2):
        pytest.skip(f"Redis {version} has WAITAOF; the refusal below is for older servers")
    backend = RedisBackend(f"{SHARED}?waitaof=1", namespace=new_namespace())
    with pytest.raises(SetupError, match=r"7\.2"):
        await backend.open()


@pytest.fixture
def redis_up(require_engine: Callable[[str, str, int], None]) -> None:
    require_engine("redis", "127.0.0.1", 6379)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def primary_and_replica(tmp_path: Path, skip_or_fail: Callable[[str], None]) -> Iterator[tuple[int, int]]:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed; it is needed for a private primary and replica")
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = Server(tmp_path / "p", _free_port())
    replica = Server(tmp_path / "r", _free_port())
    primary.start()
    try:
        replica.start()
        try:
            subprocess.run(
                ["redis-cli", "-p", str(replica.port), "REPLICAOF", "127.0.0.1", str(primary.port)],
                check=True,
                capture_output=True,
                timeout=10,
            )
            yield primary.port, replica.port
        finally:
            replica.stop()
    finally:
        primary.stop()


async def test_with_wait_replicas_a_commit_is_on_the_replica_when_it_returns(
    primary_and_replica: tuple[int, int],
) -> None:
    primary, replica_port = primary_and_replica
    backend = RedisBackend(
        f"redis://127.0.0.1:{primary}/0?wait_replicas=1&wait_timeout_ms=5000", namespace="durable"
    )
    replica = aioredis.Redis(port=replica_port)
    await backend.open()
    try:
        # The replica connects and syncs in the background: the first WAIT may have to wait for it.
        await backend.create_room(record(rid := room_id()), create_input())
        epoch = await backend.acquire_lease(rid, "w1", 60)
        assert epoch is not None
        for seq in range(1, 21):
            await backend.commit(
                rid, epoch, step(1, events(seq, 1), snapshot=f"s{seq}".encode()), history=100
            )
            snap = await replica.hget(f"durable:{{r:{rid}}}:snap", "s")
            assert snap is not None and int(snap) == seq, f"commit {seq} not on the replica when it returned"
    finally:
        await replica.aclose()
        await backend.aclose()


async def test_an_evicting_private_server_is_refused_at_open(
    tmp_path: Path, skip_or_fail: Callable[[str], None]
) -> None:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")
    server = Server(tmp_path, _free_port())
    server.start()
    try:
        admin = aioredis.Redis(port=server.port)
        await admin.config_set("maxmemory", "100mb")
        await admin.config_set("maxmemory-policy", "allkeys-lru")
        await admin.aclose()
        backend = RedisBackend(f"redis://127.0.0.1:{server.port}/0", namespace="evict")
        with pytest.raises(SetupError, match="allkeys-lru"):
            await backend.open()
        allowed = RedisBackend(f"redis://127.0.0.1:{server.port}/0?allow_eviction=1", namespace="evict")
        await allowed.open()
        await allowed.aclose()
    finally:
        server.stop()


async def test_a_wait_that_times_out_is_logged_and_the_commit_stands(
    redis_up: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The shared server has no replica: WAIT 1 times out after 50 ms (WAIT changes nothing).
    backend = RedisBackend(f"{SHARED}?wait_replicas=1&wait_timeout_ms=50", namespace=new_namespace())
    await backend.open()
    try:
        await backend.create_room(record(rid := room_id()), create_input())
        epoch = await backend.acquire_lease(rid, "w1", 60)
        assert epoch is not None
        with caplog.at_level(logging.WARNING, "roomwire.backends.redis"):
            await backend.commit(rid, epoch, step(1, events(1, 1)), history=10)
        assert (await backend.load(rid)).last_seq == 1
        assert any("not confirmed within 50 ms" in r.getMessage() for r in caplog.records)
    finally:
        await backend.drop_all()
        await backend.aclose()
