"""Fixtures of the distributed tests: deployments on a unique namespace, private Redis servers.

The Redis Cluster and the restartable AOF server are started by the helpers of the backend
tests (tests/backends/test_redis_cluster.py and test_redis_restart.py), imported from there.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed_kit import FAULT_APP, Deployment, free_port, new_namespace, opened_backend

from roomwire.errors import BackendUnavailableError

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# The backend tests' folder holds the Redis server helpers (and conformance_kit, which they import).
_BACKEND_TESTS = str(Path(__file__).resolve().parents[1] / "backends")
if _BACKEND_TESTS not in sys.path:
    sys.path.insert(0, _BACKEND_TESTS)
_cluster_tests: Any = importlib.import_module("test_redis_cluster")
_restart_tests: Any = importlib.import_module("test_redis_restart")

redis_cluster = _cluster_tests.redis_cluster  # module-scoped fixture: a three-primary cluster's URL


@pytest.fixture
def redis_url(require_engine: Callable[[str, str, int], None]) -> str:
    """The shared Redis on 6379 (skipped, or failed in CI, when it is not running)."""
    require_engine("redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def aof_redis(tmp_path: Path, skip_or_fail: Callable[[str], None]) -> Iterator[Any]:
    """A private redis-server with an fsync'ed append-only file, on a free port; `.port`, `.process`,
    `.start()` (again, after a kill: same port and files) and `.stop()`."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed; it is needed to restart a private Redis")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = _restart_tests.Server(directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def deploy(tmp_path: Path) -> AsyncIterator[Callable[..., Deployment]]:
    """`deploy(redis_url, app=FAULT_APP)`: a Deployment on a fresh namespace of that Redis.

    Afterwards every process it started is stopped and the namespace is dropped.
    """
    made: list[Deployment] = []

    def make(base_url: str, app: Path = FAULT_APP) -> Deployment:
        deployment = Deployment(f"{base_url}?namespace={new_namespace()}", tmp_path, app)
        made.append(deployment)
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            deployment.stop_all()
        for deployment in made:
            # The server may be gone already (a private one the test stopped): nothing to drop.
            with contextlib.suppress(BackendUnavailableError):
                async with opened_backend(deployment.backend_url) as backend:
                    await backend.drop_all()


@pytest.fixture
async def processes(tmp_path: Path, redis_url: str) -> AsyncIterator[Any]:
    """versions_kit.Processes on a fresh namespace of the shared Redis; stopped and dropped after."""
    from versions_kit import Processes

    made = Processes(tmp_path, f"{redis_url}?namespace={new_namespace()}")
    try:
        yield made
    finally:
        made.stop_all()
        async with opened_backend(made.url) as backend:
            await backend.drop_all()
