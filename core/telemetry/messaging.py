"""Spans of the ingest stream's hop, per OpenTelemetry's messaging semantic conventions.

The front door opens a `send` span (PRODUCER) around its XADD and writes that span's context
into each new entry's `traceparent` field. Entries are read and screened in batches, so the
consumer side cannot have one parent: the batcher's `receive` span (CLIENT) and the worker's
`process` span (CONSUMER) carry a link to the context of every entry in the batch, and the
screening task runs as a child of the receive span (Celery's instrumentation carries it in the
task's headers). A trace therefore runs request -> send, and receive -> task -> process, joined
by links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SYSTEM = "redis"  # not in the conventions' list of systems, which allows others by name
_W3C = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()


def current_traceparent() -> str:
    """The W3C traceparent of the current span, or "" when there is none."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent", "")


def span_context_of(traceparent: str) -> SpanContext | None:
    """The span context a traceparent names, or None when it is empty or malformed."""
    if not traceparent:
        return None
    context = trace.get_current_span(_W3C.extract({"traceparent": traceparent})).get_span_context()
    return context if context.is_valid else None


def trace_id_of(traceparent: str) -> str | None:
    """The 32 hex digits of a traceparent's trace id, or None when it names no trace."""
    context = span_context_of(traceparent)
    return None if context is None else format(context.trace_id, "032x")


def unrecorded_context(traceparent: str | None) -> Context:
    """The context of a request whose spans are not recorded: a new span id in the caller's
    trace (a W3C traceparent), or in a new trace. It is what the SDK gives when it samples
    nothing, without the span objects and attributes it would build and drop."""
    parent = span_context_of(traceparent) if traceparent else None
    context = SpanContext(
        trace_id=parent.trace_id if parent is not None else _IDS.generate_trace_id(),
        span_id=_IDS.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
        trace_state=parent.trace_state if parent is not None else None,
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def links_to(traceparents: Iterable[str]) -> list[Link]:
    """One link per distinct valid context (a batch request's events share one)."""
    seen: dict[tuple[int, int], Link] = {}
    for traceparent in traceparents:
        context = span_context_of(traceparent)
        if context is not None:
            seen.setdefault((context.trace_id, context.span_id), Link(context))
    return list(seen.values())


class StreamSpans:
    """Makes the send, receive and process spans of one stream and consumer group."""

    def __init__(
        self, stream: str, group: str, tracer: Tracer | None = None, *, recording: bool = True
    ) -> None:
        self.stream = stream
        self.group = group
        self.tracer = tracer or trace.get_tracer(__name__)
        # Not recording (no exporter): a send span would be built and dropped on every request,
        # so the entries carry the request's own context instead.
        self.recording = recording

    def _attributes(self, operation: str, kind: str, count: int) -> dict[str, str | int]:
        """The attributes every span of this stream carries."""
        return {
            messaging.MESSAGING_SYSTEM: SYSTEM,
            messaging.MESSAGING_DESTINATION_NAME: self.stream,
            messaging.MESSAGING_OPERATION_TYPE: kind,
            messaging.MESSAGING_OPERATION_NAME: operation,
            messaging.MESSAGING_BATCH_MESSAGE_COUNT: count,
        }

    @contextmanager
    def send(self, count: int) -> Iterator[Span]:
        """The span around adding `count` events; its context is what entries carry (the
        current span's when spans are not recorded)."""
        if not self.recording:
            yield trace.get_current_span()
            return
        attributes = self._attributes("XADD", "send", count)
        with self.tracer.start_as_current_span(
            f"send {self.stream}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            yield span

    @staticmethod
    def sent(span: Span, stream_ids: list[str]) -> None:
        """Name the message on a send span that added exactly one."""
        if len(stream_ids) == 1:
            span.set_attribute(messaging.MESSAGING_MESSAGE_ID, stream_ids[0])

    @contextmanager
    def receive(
        self, traceparents: list[str], operation: str, started_ns: int | None = None
    ) -> Iterator[Span]:
        """The span of taking a batch from the consumer group, linked to each entry.

        Links must be known when a span starts (samplers see them), so the caller reads first
        and passes when the read began as `started_ns`; work inside the span (dispatching the
        batch) is its child.
        """
        attributes = self._attributes(operation, "receive", len(traceparents))
        attributes[messaging.MESSAGING_CONSUMER_GROUP_NAME] = self.group
        with self.tracer.start_as_current_span(
            f"receive {self.stream}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=links_to(traceparents),
            start_time=started_ns,
        ) as span:
            yield span

    @contextmanager
    def process(self, traceparents: list[str], consumer: str) -> Iterator[Span]:
        """The span of screening a batch, linked to each entry's context."""
        attributes = self._attributes("screen", "process", len(traceparents))
        attributes[messaging.MESSAGING_CONSUMER_GROUP_NAME] = self.group
        attributes[messaging.MESSAGING_CLIENT_ID] = consumer
        with self.tracer.start_as_current_span(
            f"process {self.stream}",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links_to(traceparents),
        ) as span:
            yield span
