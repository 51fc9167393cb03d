"""Prometheus metrics of a gateway and a worker process on Redis, each on its own --metrics-port.

A scripted game over real sockets: a room takes messages, one bad message, hibernates when left,
and wakes when a player comes back; both processes' /metrics are scraped over HTTP and parsed
with the Prometheus text parser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from distributed_kit import WAIT_S, Deployment, free_port, wait_listening
from prometheus_client.parser import text_string_to_metric_families

from roomwire_client import Client, ClientError

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(url: str, ready: Callable[[Samples], bool]) -> Samples:
    """Scrape until `ready` holds (a commit lands just after its receipt reaches the client)."""
    deadline = time.monotonic() + WAIT_S
    async with httpx.AsyncClient(timeout=10.0) as http:
        while True:
            response = await http.get(url)
            assert response.status_code == 200, response.text
            samples = _samples(response.text)
            if ready(samples) or time.monotonic() > deadline:
                return samples
            await asyncio.sleep(0.1)


async def test_gateway_and_worker_processes_export_their_metrics(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    port, gateway_metrics, worker_metrics = free_port(), free_port(), free_port()
    gateway = deployment._serve(
        "g1",
        "gateway",
        "--port",
        str(port),
        "--metrics-port",
        str(gateway_metrics),
        "--metrics-host",
        "127.0.0.1",
    )
    worker = deployment._serve("w1", "worker", "--worker-id", "w1", "--metrics-port", str(worker_metrics))
    await wait_listening(gateway, port)
    await wait_listening(gateway, gateway_metrics)  # its own server: may come up after the main port
    await asyncio.to_thread(worker.wait_for_line, "worker w1 running")
    await wait_listening(worker, worker_metrics)
    url = f"http://127.0.0.1:{port}"
    gw_scrape = f"http://127.0.0.1:{gateway_metrics}/metrics"
    wk_scrape = f"http://127.0.0.1:{worker_metrics}/metrics"

    async with Client(url) as alice:
        await alice.login_guest()
        room = await alice.create("sleepy")  # idle_timeout_s=1: hibernates once left
        for k in (1, 2, 3):
            await room.request("add", {"c": "alice", "k": k})
        with pytest.raises(ClientError) as bad:
            await room.request("add", {"c": "alice"})  # no k: the handler's schema refuses it
        assert bad.value.code == "invalid_message"
        gw = await _scrape(gw_scrape, lambda s: _get(s, "roomwire_connections") == 1)
        await room.leave()
    wk = await _scrape(
        wk_scrape, lambda s: _get(s, "roomwire_room_stops_total", type="sleepy", outcome="hibernated") == 1
    )

    assert _get(gw, "roomwire_info", version=_version(gw), role="gateway") == 1
    assert _get(gw, "roomwire_connections") == 1
    assert _get(gw, "roomwire_connections_opened_total") == 1
    assert not any(name == "roomwire_inputs_total" for name, _ in gw)  # a gateway runs no rooms

    assert _get(wk, "roomwire_room_starts_total", type="sleepy", kind="new") == 1
    assert _get(wk, "roomwire_room_stops_total", type="sleepy", outcome="hibernated") == 1
    # create, join, 3 adds, the refused add, leave
    assert _get(wk, "roomwire_inputs_total", type="sleepy") == 7
    assert _get(wk, "roomwire_events_total", type="sleepy") == 3
    assert _get(wk, "roomwire_handler_errors_total", type="sleepy", code="invalid_message") == 1
    assert _get(wk, "roomwire_message_to_commit_seconds_count", type="sleepy") == 4
    assert _get(wk, "roomwire_message_to_commit_seconds_bucket", type="sleepy", le="+Inf") == 4
    commits = _get(wk, "roomwire_commits_total", type="sleepy")
    assert commits >= 3 and _get(wk, "roomwire_commit_seconds_count", type="sleepy") == commits
    assert not any(name == "roomwire_connections" for name, _ in wk)  # a worker has no clients

    # Coming back wakes the room: a second start, resumed from its last commit.
    async with Client(url) as bob:
        await bob.login_guest()
        again = await bob.join(room.id)
        await again.request("add", {"c": "bob", "k": 1})
        wk = await _scrape(
            wk_scrape, lambda s: _get(s, "roomwire_room_starts_total", type="sleepy", kind="resumed") == 1
        )
        assert _get(wk, "roomwire_room_starts_total", type="sleepy", kind="resumed") == 1
        # The room's version label is the content hash of the app's files (promise 5).
        active = {
            dict(labels)["version"]: v
            for (name, labels), v in wk.items()
            if name == "roomwire_rooms" and dict(labels)["state"] == "active" and v
        }
        assert list(active.values()) == [1] and len(next(iter(active))) == 12
    async with httpx.AsyncClient(timeout=10.0) as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404  # not on the public port


def _version(samples: Samples) -> str:
    (labels,) = [dict(lbl) for name, lbl in samples if name == "roomwire_info"]
    return labels["version"]
