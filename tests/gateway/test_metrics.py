"""Prometheus metrics over real sockets: a scripted game, then GET /metrics parsed as Prometheus does."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from gateway_harness import make_app, serving
from prometheus_client.parser import text_string_to_metric_families

from roomwire import App, GatewaySettings
from roomwire.gateway.metrics import serve_metrics
from roomwire.testing import serve_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent, as Prometheus treats a counter never incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape_until(url: str, ready: Any, timeout_s: float = 10.0) -> Samples:
    """Scrape until `ready(samples)` holds (the worker commits just after clients see events)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10.0) as http:
        while True:
            response = await http.get(url)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            samples = parse(response.text)
            if ready(samples) or time.monotonic() > deadline:
                return samples
            await asyncio.sleep(0.05)


async def test_scripted_game_is_counted_on_metrics() -> None:
    app = make_app(GatewaySettings(metrics=True, max_frame_bytes=4096))
    async with serve_app(app) as url, serving(url, app) as srv:
        alice, seat = await srv.player(create=True)
        await srv.player(await srv.seat(room=seat.room))  # a second player in the same room
        for i in range(1, 6):
            await alice.msg(seat.room, "move", {"n": i}, id=i)
        for i in range(1, 6):
            await alice.recv_until("ack", id=i)
        await alice.msg(seat.room, "boom", {}, id=6)
        reject = await alice.recv_until("reject", id=6)
        assert reject["code"] == "internal"
        await alice.send({"t": "msg", "room": seat.room, "type": "move", "data": "x" * 5000})
        error = await alice.recv_until("error")
        assert error["code"] == "frame_too_large"

        samples = await scrape_until(
            f"{url}/metrics",
            lambda s: value(s, "roomwire_message_to_commit_seconds_count", type="arena") >= 6,
        )

    assert value(samples, "roomwire_info", version=_version(samples), role="all") == 1
    assert value(samples, "roomwire_connections") == 2
    assert value(samples, "roomwire_connections_opened_total") == 2
    assert value(samples, "roomwire_frames_refused_total", code="frame_too_large") == 1
    assert value(samples, "roomwire_rooms", type="arena", version=app.version, state="active") == 1
    assert value(samples, "roomwire_room_players_connected", type="arena") == 2
    assert value(samples, "roomwire_room_starts_total", type="arena", kind="new") == 1
    # create + 2 joins + 5 moves + boom; the over-sized frame never reached the room
    assert value(samples, "roomwire_inputs_total", type="arena") == 9
    assert value(samples, "roomwire_handler_errors_total", type="arena", code="internal") == 1
    # joined x2 and moved x5 (the failed step's event was rolled back)
    assert value(samples, "roomwire_events_total", type="arena") == 7
    # every message reached a commit, each within the histogram's finite buckets
    assert value(samples, "roomwire_message_to_commit_seconds_count", type="arena") == 6
    assert value(samples, "roomwire_message_to_commit_seconds_bucket", type="arena", le="+Inf") == 6
    assert value(samples, "roomwire_message_to_commit_seconds_bucket", type="arena", le="5.0") == 6
    assert 0 < value(samples, "roomwire_message_to_commit_seconds_sum", type="arena") < 6 * 5.0
    commits = value(samples, "roomwire_commits_total", type="arena")
    assert commits >= 3
    assert value(samples, "roomwire_commit_seconds_count", type="arena") == commits
    assert value(samples, "roomwire_engine_errors_total", op="commit") == 0
    # bounded labels only: no room or player id appears anywhere in the page
    assert all(seat.room not in str(key) and seat.player not in str(key) for key in samples)


def _version(samples: Samples) -> str:
    (labels,) = [dict(lbl) for name, lbl in samples if name == "roomwire_info"]
    return labels["version"]


async def test_metrics_are_off_by_default() -> None:
    app = make_app()
    async with serve_app(app) as url, httpx.AsyncClient(timeout=10.0) as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404


async def test_metrics_on_a_port_of_their_own() -> None:
    app = make_app()  # metrics not on the public port
    async with serve_app(app) as url, serving(url, app) as srv:
        gateway = app.gateway
        assert gateway is not None
        server = await serve_metrics(gateway.metrics_registry, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await srv.player(create=True)
            samples = await scrape_until(
                f"http://127.0.0.1:{port}/metrics",
                lambda s: value(s, "roomwire_room_players_connected", type="arena") == 1,
            )
            assert value(samples, "roomwire_connections") == 1
            async with httpx.AsyncClient(timeout=10.0) as http:
                assert (await http.get(f"http://127.0.0.1:{port}/other")).status_code == 404
                assert (await http.get(f"{url}/metrics")).status_code == 404
        finally:
            server.close()
            await server.wait_closed()


async def test_rate_limited_and_oversized_messages_are_counted() -> None:
    app = App("limits", settings=GatewaySettings(metrics=True))
    room_type = app.room("capped", rate_limit=2, max_message_bytes=256)  # bursts of 4

    @room_type.message("move")
    def move(room: Any, player: Any, msg: Any) -> None:
        room.broadcast("moved")

    async with serve_app(app) as url, serving(url, app) as srv:
        client, seat = await srv.player(type="capped", create=True)
        await client.msg(seat.room, "move", "x" * 1000, id=1)  # over max_message_bytes
        assert (await client.recv_until("reject", id=1))["code"] == "message_too_large"
        for i in range(2, 12):
            await client.msg(seat.room, "move", None, id=i)
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < 10:  # acks come after the commit, rejects at once: any order
            frame = await client.recv()
            if frame["t"] in ("ack", "reject"):
                answers[frame["id"]] = frame
        limited = sum(frame.get("code") == "rate_limited" for frame in answers.values())
        assert limited >= 1  # ten at once, past a burst of four
        samples = await scrape_until(f"{url}/metrics", lambda s: True)
    assert value(samples, "roomwire_frames_refused_total", code="rate_limited") == limited
    assert value(samples, "roomwire_frames_refused_total", code="message_too_large") == 1


ROOT = Path(__file__).resolve().parents[2]


async def test_docs_and_dashboard_name_exactly_the_exported_metrics() -> None:
    app = make_app(GatewaySettings(metrics=True))
    async with serve_app(app) as url, serving(url, app) as srv, httpx.AsyncClient(timeout=10.0) as http:
        await srv.player(create=True)
        page = (await http.get(f"{url}/metrics")).text
    exported = {family.name for family in text_string_to_metric_families(page)}
    table = (ROOT / "docs" / "operations.md").read_text()
    documented = {
        re.sub(r"_total$", "", name) for name in re.findall(r"^\| `(roomwire_[a-z_]+)` \|", table, re.M)
    }
    assert documented == exported
    dashboard = json.loads((ROOT / "docs" / "grafana" / "roomwire-dashboard.json").read_text())
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"roomwire_[a-z_]+", target["expr"])
    }
    assert used <= exported, used - exported
