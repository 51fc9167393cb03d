"""OpenTelemetry traces of room inputs (optional extra `roomwire[otel]`; off by default).

One message makes one trace: `roomwire.receive` on the gateway (its context travels in the input
record, `MessageInput.trace`, as a W3C traceparent, so it crosses the engine and reaches the worker
in another process), then `roomwire.handle` on the worker from the step to the commit of its
batch, and `roomwire.commit` for that commit. With tracing off (`TRACER is None`) the hot path
pays one comparison per message.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from roomwire.errors import SetupError

# The OpenTelemetry tracer once `enable()` ran; None: tracing is off.
TRACER: Any = None
_propagator: Any = None


def enable(tracer_provider: Any = None) -> None:
    """Trace room inputs with `tracer_provider` (default: OpenTelemetry's global provider)."""
    global TRACER, _propagator
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:
        raise SetupError("tracing needs OpenTelemetry: pip install 'roomwire[otel]'") from exc
    TRACER = trace.get_tracer("roomwire", tracer_provider=tracer_provider)
    _propagator = TraceContextTextMapPropagator()


def disable() -> None:
    """Stop tracing (spans already started still end)."""
    global TRACER, _propagator
    TRACER = None
    _propagator = None


async def traced_http(app: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """Run one lobby HTTP request inside a `roomwire.lobby` span (continuing a client's traceparent)."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode

    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    span = TRACER.start_span(
        "roomwire.lobby",
        context=_propagator.extract(headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": scope.get("method", ""), "url.path": scope.get("path", "")},
    )

    async def send_traced(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status = int(message["status"])
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        await send(message)

    with trace.use_span(span, end_on_exit=True):
        await app(scope, receive, send_traced)


def receive_span(room_id: str, message_type: str) -> tuple[Any, str]:
    """Start and end the gateway's span for a message; its traceparent for the input record."""
    from opentelemetry.trace import SpanKind

    span = TRACER.start_span(
        "roomwire.receive",
        kind=SpanKind.PRODUCER,
        attributes={"roomwire.room_id": room_id, "roomwire.message_type": message_type},
    )
    carrier: dict[str, str] = {}
    from opentelemetry import trace

    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    span.end()
    return span, carrier.get("traceparent", "")


def handle_span(traceparent: str, room_id: str, room_type: str, version: str, message_type: str) -> Any:
    """Start the worker's span for one traced input, a child of the gateway's span."""
    from opentelemetry.trace import SpanKind

    parent = _propagator.extract({"traceparent": traceparent})
    return TRACER.start_span(
        "roomwire.handle",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "roomwire.room_id": room_id,
            "roomwire.room_type": room_type,
            "roomwire.version": version,
            "roomwire.message_type": message_type,
        },
    )


def commit_span(parent: Any, room_type: str, events: int) -> Any:
    """Start the span of a commit, a child of the first traced input it covers."""
    from opentelemetry import trace

    return TRACER.start_span(
        "roomwire.commit",
        context=trace.set_span_in_context(parent),
        attributes={"roomwire.room_type": room_type, "roomwire.events": events},
    )


__all__ = ["TRACER", "commit_span", "disable", "enable", "handle_span", "receive_span", "traced_http"]
