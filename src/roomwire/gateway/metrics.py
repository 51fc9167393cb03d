"""Prometheus export of a process's metrics: a Collector that reads roomwire's counters at scrape time.

The hot path counts in plain ints (runtime.metrics); nothing here runs per message. Served on
`/metrics` of the gateway (GatewaySettings.metrics) or on a port of its own (`metrics_server`).
Names and labels: docs/operations.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roomwire.protocol.codes import CloseCode
from roomwire.runtime.metrics import Histogram, Metrics, RoomTotals
from roomwire.runtime.worker import Worker

METRICS_PATH = "/metrics"

try:  # as roomwire.__version__ (which this layer may not import)
    _VERSION = version("roomwire")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"


class RoomwireCollector(Collector):
    """Turns one process's Metrics (and its live connections and rooms) into metric families."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        worker_getter: Callable[[], Worker | None] = lambda: None,
        connections: Callable[[], int] | None = None,
        role: str = "all",
    ) -> None:
        self.metrics = metrics
        self.worker_getter = worker_getter  # a getter: the gateway builds its worker after this
        self.connections = connections
        self.role = role

    def collect(self) -> Iterator[Any]:
        """Every roomwire metric family, read now."""
        m = self.metrics
        info = GaugeMetricFamily(
            "roomwire_info", "This process: roomwire version and role.", labels=["version", "role"]
        )
        info.add_metric([_VERSION, self.role], 1)
        yield info
        if self.connections is not None:
            yield GaugeMetricFamily(
                "roomwire_connections", "Open client WebSocket connections.", value=self.connections()
            )
            yield CounterMetricFamily(
                "roomwire_connections_opened",
                "Client WebSocket connections accepted.",
                value=m.connections_opened,
            )
            closed = CounterMetricFamily(
                "roomwire_connections_closed",
                "Connections the server closed, by close code (4002: slow consumer).",
                labels=["code"],
            )
            for close_code, n in sorted(m.closes.items()):
                closed.add_metric([str(close_code)], n)
            yield closed
            yield CounterMetricFamily(
                "roomwire_slow_consumer_closes",
                "Connections closed because their send queue overflowed (4002).",
                value=m.closes.get(CloseCode.SLOW_CONSUMER, 0),
            )
            refused = CounterMetricFamily(
                "roomwire_frames_refused",
                "Client frames answered with an error or reject by the gateway, by error code "
                "(rate_limited, too_large, not_joined, ...).",
                labels=["code"],
            )
            for code, n in sorted(m.refused_frames.items()):
                refused.add_metric([code], n)
            yield refused
        worker = self.worker_getter()
        if worker is not None:
            yield from self._worker_families(worker)
        errors = CounterMetricFamily(
            "roomwire_engine_errors",
            "Engine calls that failed (engine unavailable), by operation.",
            labels=["op"],
        )
        for op, n in sorted(m.engine_errors.items()):
            errors.add_metric([op], n)
        yield errors

    def _worker_families(self, worker: Worker) -> Iterator[Any]:
        m = self.metrics
        totals: dict[str, RoomTotals] = {}
        for name, retired in list(m.retired.items()):
            t = totals[name] = RoomTotals()
            t.inputs, t.events, t.commits, t.handler_s = (
                retired.inputs,
                retired.events,
                retired.commits,
                retired.handler_s,
            )
        rooms: dict[tuple[str, str, str], int] = {}
        players: dict[str, int] = {}
        for ex in worker.held_executors():
            name = ex.room_type.name
            t = totals.get(name) or totals.setdefault(name, RoomTotals())
            t.inputs += ex.inputs_total
            t.events += ex.events_total
            t.commits += ex.commits_total
            t.handler_s += ex.handler_s
            connected = ex.machine.connected_count
            state = "active" if connected else "idle"
            key = (name, ex.machine.snapshot.code_version, state)
            rooms[key] = rooms.get(key, 0) + 1
            players[name] = players.get(name, 0) + connected
        gauge = GaugeMetricFamily(
            "roomwire_rooms",
            "Rooms running on this worker, by type, code version and state (active: a player is "
            "connected; idle: none, hibernates after idle_timeout_s).",
            labels=["type", "version", "state"],
        )
        for (name, code_version, state), n in sorted(rooms.items()):
            gauge.add_metric([name, code_version, state], n)
        yield gauge
        conn = GaugeMetricFamily(
            "roomwire_room_players_connected", "Connected players in rooms running here.", labels=["type"]
        )
        for name, n in sorted(players.items()):
            conn.add_metric([name], n)
        yield conn
        for metric, doc, attr in (
            ("roomwire_inputs", "Inputs applied (messages, joins, leaves, disconnects).", "inputs"),
            ("roomwire_events", "Events committed.", "events"),
            ("roomwire_commits", "Commits to the engine.", "commits"),
            ("roomwire_handler_seconds", "Seconds spent in room steps (handlers and timers).", "handler_s"),
        ):
            family = CounterMetricFamily(metric, doc, labels=["type"])
            for name, t in sorted(totals.items()):
                family.add_metric([name], getattr(t, attr))
            yield family
        yield _histograms(
            "roomwire_commit_seconds",
            "Time for one commit to the engine, retries included.",
            m.commit_seconds,
        )
        yield _histograms(
            "roomwire_message_to_commit_seconds",
            "From the gateway receiving a client message (MessageInput.at) to the commit of its step.",
            m.message_seconds,
        )
        yield _counters(
            "roomwire_handler_errors",
            "Inputs refused by the room (handler raised, internal error, join refused), by type and code.",
            ["type", "code"],
            m.rejected,
        )
        yield _counters(
            "roomwire_room_starts",
            "Rooms this worker started running: new (first run) or resumed (a wake after hibernation, "
            "a takeover after a lease expired, a restart).",
            ["type", "kind"],
            m.room_claims,
        )
        yield _counters(
            "roomwire_room_stops",
            "Rooms that stopped running here, by outcome (ended, hibernated, lost: another worker "
            "took the lease, stopped, gone, crashed).",
            ["type", "outcome"],
            m.room_stops,
        )
        yield CounterMetricFamily(
            "roomwire_leases_lost",
            "Lease renewals refused: another worker took the room over.",
            value=m.leases_lost,
        )


def _counters(
    name: str, doc: str, labels: list[str], table: Mapping[tuple[str, str], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(table.items()):
        family.add_metric(list(key), n)
    return family


def _histograms(name: str, doc: str, table: dict[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["type"])
    for room_type, hist in sorted(table.items()):
        family.add_metric([room_type], hist.cumulative(), sum_value=hist.sum)
    return family


def new_registry(collector: RoomwireCollector) -> CollectorRegistry:
    """A registry holding only roomwire's collector (not the process-global default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_route(registry: CollectorRegistry) -> Route:
    """GET /metrics: the registry in Prometheus text format."""

    async def endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, endpoint, methods=["GET"])


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> asyncio.Server:
    """Serve GET /metrics on host:port in this event loop (roomwire serve --metrics-port).

    A bare asyncio server rather than a second uvicorn: one request per connection, nothing else
    to serve, and uvicorn's signal handling belongs to the main server.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].split(b"?", 1)[0] if len(parts) >= 2 else b""
            if parts[:1] == [b"GET"] and path == METRICS_PATH.encode():
                status, body, kind = b"200 OK", generate_latest(registry), CONTENT_TYPE_LATEST
            else:
                status, body, kind = b"404 Not Found", b"only GET /metrics here\n", "text/plain"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\ncontent-type: "
                + kind.encode()
                + b"\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scraper that went away or sent garbage: nothing to answer
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port, limit=16 * 1024)


__all__ = ["METRICS_PATH", "RoomwireCollector", "metrics_route", "new_registry", "serve_metrics"]
