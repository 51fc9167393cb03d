"""OpenTelemetry: one client message is one trace, from the gateway through Redis to the worker's commit.

The gateway (no worker) and the worker have separate Redis connections: the trace context crosses
the engine inside the input record, as it does between processes. Spans are read from the SDK's
in-memory exporter.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from distributed_kit import WAIT_S, new_namespace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from roomwire import App
from roomwire.backends import backend_from_url
from roomwire.backends.records import Input, MessageInput
from roomwire.runtime import tracing
from roomwire.runtime.worker import Worker
from roomwire.testing import serve_app
from roomwire_client import Client


def _app() -> App:
    app = App("traced", version="v3")
    counter = app.room("counter", rate_limit=None)

    @counter.on_create
    def create(room: Any, options: Any) -> None:
        room.state["n"] = 0

    @counter.message("add")
    def add(room: Any, player: Any, msg: Any) -> None:
        room.state["n"] += 1
        room.broadcast("total", n=room.state["n"])

    return app


async def test_one_message_is_one_trace_from_gateway_to_commit(redis_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    url = f"{redis_url}?namespace={new_namespace()}"
    app = _app()
    worker_backend = backend_from_url(url)
    try:
        async with serve_app(app, backend_from_url(url), run_worker=False) as base:
            await worker_backend.open()
            worker = Worker(app.room_types, worker_backend, lease_ttl_s=1.0, code_version=app.version)
            await worker.start()
            try:
                async with Client(base) as client:
                    await client.login_guest()
                    room = await client.create("counter")
                    await room.request("add")
                    room_id = room.id
                deadline = time.monotonic() + WAIT_S
                while not any(s.name == "roomwire.commit" for s in exporter.get_finished_spans()):
                    assert time.monotonic() < deadline, exporter.get_finished_spans()
                    await asyncio.sleep(0.05)  # the commit span ends just after the ack is published
            finally:
                await worker.aclose()
    finally:
        tracing.disable()
        await worker_backend.drop_all()
        await worker_backend.aclose()

    finished = exporter.get_finished_spans()
    lobby = [s for s in finished if s.name == "roomwire.lobby"]
    requests = {(s.attributes or {}).get("url.path"): s for s in lobby}
    assert requests["/auth/guest"].attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert requests["/rooms"].attributes["http.request.method"] == "POST"  # type: ignore[index]
    spans = {s.name: s for s in finished if s.name != "roomwire.lobby"}
    receive, handle, commit = spans["roomwire.receive"], spans["roomwire.handle"], spans["roomwire.commit"]
    trace_id = receive.context.trace_id
    assert trace_id != 0
    assert handle.context.trace_id == trace_id and commit.context.trace_id == trace_id
    assert handle.parent is not None and handle.parent.span_id == receive.context.span_id
    assert commit.parent is not None and commit.parent.span_id == handle.context.span_id
    assert receive.attributes is not None and receive.attributes["roomwire.room_id"] == room_id
    assert handle.attributes is not None
    assert handle.attributes["roomwire.room_type"] == "counter"
    assert handle.attributes["roomwire.version"] == "v3"
    assert handle.attributes["roomwire.message_type"] == "add"
    assert handle.attributes["roomwire.seq"] == 1  # the add's event: the room's first
    assert commit.attributes is not None and commit.attributes["roomwire.events"] == 1
    # the handle span lasts from the step to the end of the commit
    assert handle.start_time is not None and handle.end_time is not None and commit.end_time is not None
    assert handle.start_time <= commit.start_time and commit.end_time <= handle.end_time


def test_input_records_from_before_tracing_still_decode() -> None:
    """A record written by an older gateway (no trace element) is read as untraced."""
    old = msgspec.msgpack.encode(["msg", "p1", "move", {"n": 1}, 3, 1.5, "s1"])
    assert msgspec.msgpack.decode(old, type=Input) == MessageInput("p1", "move", {"n": 1}, 3, 1.5, "s1", "")
