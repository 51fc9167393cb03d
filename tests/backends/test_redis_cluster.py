"""RedisBackend on a real three-node Redis Cluster that this module starts on free loopback ports.

Runs the whole conformance suite (tests/backends/conformance) against the cluster by giving it
an `engine_url` that points there, then cluster-specific checks: a room's keys stay in one slot
(the server's CLUSTER KEYSLOT agrees), rooms spread over every node and still list, drop_all
empties every node, and subscribers on several nodes get their commits.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from conformance_kit import Collector, create_input, events, record, room_id, step
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from roomwire.backends import backend_from_url
from roomwire.backends.records import Published
from roomwire.backends.redis import RedisBackend

START_S = 20.0  # bound for the cluster to come up; never reached when things work
STOP_S = 5.0


@dataclass
class Node:
    port: int
    process: subprocess.Popen[str]
    ready: threading.Event = field(default_factory=threading.Event)
    drain: threading.Thread | None = None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _drain(node: Node, stream: IO[str], log: Path) -> None:
    """Copy the server's output to a log file; flag readiness when it says so."""
    with log.open("w", encoding="utf-8") as out:
        for line in stream:
            out.write(line)
            if "Ready to accept connections" in line:
                node.ready.set()


def _start_node(directory: Path, port: int, bus_port: int) -> Node:
    config = {
        "port": port,
        "bind": "127.0.0.1",
        "cluster-enabled": "yes",
        "cluster-port": bus_port,
        "cluster-config-file": directory / f"nodes-{port}.conf",
        "dir": directory,
        "save": "",
        "appendonly": "no",
        "daemonize": "no",
    }
    process = subprocess.Popen(
        ["redis-server", *(arg for name, value in config.items() for arg in (f"--{name}", str(value)))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    node = Node(port, process)
    assert process.stdout is not None
    node.drain = threading.Thread(target=_drain, args=(node, process.stdout, directory / f"{port}.log"))
    node.drain.start()
    return node


def _stop(nodes: list[Node]) -> None:
    for node in nodes:
        if node.process.poll() is None:
            node.process.terminate()
    for node in nodes:
        try:
            node.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=STOP_S)
        if node.drain is not None:
            node.drain.join(timeout=STOP_S)


def _cluster_state_ok(port: int) -> bool:
    info = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=STOP_S
    ).stdout
    return "cluster_state:ok" in info


@pytest.fixture(scope="module")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory, skip_or_fail: Callable[[str], None]
) -> Iterator[str]:
    """Start a three-primary cluster on free ports; yields its URL; stops it afterwards."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is not installed; it is needed to start a Redis Cluster")
    directory = tmp_path_factory.mktemp("redis-cluster")
    ports = _free_ports(6)
    nodes: list[Node] = []
    try:
        for port, bus_port in zip(ports[:3], ports[3:], strict=True):
            nodes.append(_start_node(directory, port, bus_port))
        deadline = time.monotonic() + START_S
        for node in nodes:
            if not node.ready.wait(max(0.0, deadline - time.monotonic())):
                pytest.fail(f"redis-server on port {node.port} did not start; see {directory}")
        create = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=START_S,
        )
        assert create.returncode == 0, create.stdout + create.stderr
        # cluster_state turns ok once every node has heard of every slot's owner; there is no
        # event to wait on, so poll (bounded).
        while not all(_cluster_state_ok(n.port) for n in nodes):
            assert time.monotonic() < deadline, f"cluster not ok within {START_S} s; see {directory}"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{nodes[0].port}/0"
    finally:
        _stop(nodes)


@pytest.fixture
def engine_url(redis_cluster: str) -> str:
    """Overrides the parametrized engine_url: every backend test in this module uses the cluster."""
    return redis_cluster


# --- the conformance suite, against the cluster -----------------------------------------------


def _conformance_tests() -> dict[str, Any]:
    """Every test function and fixture of tests/backends/conformance, loaded under private names."""
    fixture_type = type(pytest.fixture(lambda: None))
    found: dict[str, Any] = {}
    for path in sorted((Path(__file__).parent / "conformance").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_cluster_conformance_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, obj in vars(module).items():
            if (name.startswith("test_") and callable(obj)) or isinstance(obj, fixture_type):
                assert name not in found, f"two conformance modules define {name}"
                found[name] = obj
    return found


globals().update(_conformance_tests())


# --- cluster-specific -------------------------------------------------------------------------


@pytest.fixture
async def cluster_backend(redis_cluster: str) -> AsyncIterator[RedisBackend]:
    backend = backend_from_url(redis_cluster, namespace=f"t-{uuid.uuid4().hex[:12]}")
    assert isinstance(backend, RedisBackend)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.drop_all()
        await backend.aclose()


@pytest.fixture
async def cluster_client(redis_cluster: str) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster, protocol=2)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


async def test_cluster_mode_is_detected(cluster_backend: RedisBackend) -> None:
    assert cluster_backend.is_cluster


async def test_room_keys_share_one_slot_by_the_servers_count(
    cluster_backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    rid = room_id()
    await cluster_backend.create_room(record(rid), create_input())
    epoch = await cluster_backend.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await cluster_backend.commit(rid, epoch, step(1, events(1, 2)), history=10)
    prefix = f"{cluster_backend.namespace}:{{r:{rid}}}:"
    suffixes = ("meta", "in", "out", "log", "snap", "lease", "seats", "members", "ch")
    slots = {await cluster_client.cluster_keyslot(prefix + s) for s in suffixes}
    assert len(slots) == 1


async def test_rooms_on_every_node_are_listed_and_dropped(
    redis_cluster: str, cluster_backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    ns = cluster_backend.namespace
    rids: list[str] = []
    nodes: set[str] = set()
    while len(nodes) < 3 or len(rids) < 12:  # rooms on every primary
        rid = room_id()
        node = cluster_client.get_node_from_key(f"{ns}:{{r:{rid}}}:meta")
        assert node is not None
        nodes.add(node.name)
        rids.append(rid)
    for rid in rids:
        await cluster_backend.create_room(record(rid, type="arena"), create_input())

    assert [r.id for r in await cluster_backend.list_rooms("arena")] == rids

    await cluster_backend.drop_all()
    for node in cluster_client.get_primaries():
        client = Redis(host=node.host, port=int(node.port), protocol=2)
        try:
            left = [k async for k in client.scan_iter(match=f"{cluster_backend.namespace}:*")]
        finally:
            await client.aclose()
        assert left == [], node.name


async def test_subscribers_on_every_node_get_their_commits(cluster_backend: RedisBackend) -> None:
    rids = [room_id() for _ in range(9)]
    collectors: dict[str, Collector[Published]] = {}
    unsubscribes = []
    try:
        for rid in rids:
            await cluster_backend.create_room(record(rid), create_input())
            collectors[rid] = Collector()
            unsubscribes.append(cluster_backend.subscribe(rid, collectors[rid]))
        for rid in rids:
            epoch = await cluster_backend.acquire_lease(rid, "w1", 30)
            assert epoch is not None
            for seq in (1, 2):
                await cluster_backend.commit(rid, epoch, step(1, events(seq, 1)), history=10)
        got = await asyncio.gather(*(c.wait_for(2) for c in collectors.values()))
    finally:
        for unsubscribe in unsubscribes:
            unsubscribe()
    assert all([p.events for p in items] == [events(1, 1), events(2, 1)] for items in got)
