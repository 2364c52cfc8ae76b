"""Traces across the stream, recorded in memory: request -> send, and receive -> process.

The web app, the batcher's dispatch and the screening task run in this process (Celery eager,
the `worker_side` fixture); the engine is a stand-in, since what is checked here is the spans,
not the decisions.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tasks.runtime
from core.settings import Settings
from core.stream import ScreeningStream
from tasks.batcher import READ, dispatch
from tests.factories import AUTH, event_body, make_app


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    """The finished spans of one name."""
    return [span for span in finished if span.name == name]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict."""
    return dict(span.attributes or {})


def test_one_events_request_span_and_screening_span_are_joined_through_a_link(
    redis_url: str,
    redis_client: redis.Redis,
    spans: InMemorySpanExporter,
    worker_side: tasks.runtime.Runtime,
) -> None:
    web = make_app(redis_url).test_client()
    body = event_body(event_id="traced")
    assert web.post("/v1/events", json=body, headers=AUTH).status_code == 202

    stream = ScreeningStream.from_settings(redis_client, Settings(redis_url=redis_url))
    stream.ensure_group()
    started = time.time_ns()
    entries = stream.read("batcher", 10)
    dispatch(entries, "screen.cpu", READ, started)

    finished = spans.get_finished_spans()
    [request] = by_name(finished, "POST /v1/events")
    [send] = by_name(finished, "send events:ingest")
    [receive] = by_name(finished, "receive events:ingest")
    [process] = by_name(finished, "process events:ingest")

    # The request's trace: the send span is the request's child, and what the entry carries.
    assert request.kind is SpanKind.SERVER and send.kind is SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    [entry] = entries
    assert entry.traceparent.rsplit("-", 1)[0] == (
        f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}"
    )
    assert attributes(send)["messaging.message.id"] == entry.stream_id

    # The screening side links back to it, and the task continues the batcher's trace.
    for consumer in (receive, process):
        [link] = consumer.links
        assert link.context.trace_id == request.context.trace_id
        assert link.context.span_id == send.context.span_id
    assert process.context.trace_id == receive.context.trace_id != request.context.trace_id
    assert receive.kind is SpanKind.CLIENT and process.kind is SpanKind.CONSUMER

    for span, operation in ((send, "send"), (receive, "receive"), (process, "process")):
        found = attributes(span)
        assert found["messaging.system"] == "redis"
        assert found["messaging.destination.name"] == "events:ingest"
        assert found["messaging.operation.type"] == operation
        assert found["messaging.batch.message_count"] == 1
    assert attributes(receive)["messaging.consumer.group.name"] == "screeners"
    assert attributes(process)["messaging.client.id"] == worker_side.consumer_name
    assert stream.ledger().low == 1  # and the event was decided inside that span


def test_a_batch_links_once_to_each_request_that_sent_its_events(
    redis_url: str,
    redis_client: redis.Redis,
    spans: InMemorySpanExporter,
    worker_side: tasks.runtime.Runtime,
) -> None:
    web = make_app(redis_url).test_client()
    batch = {"events": [event_body() for _ in range(3)]}
    assert web.post("/v1/events/batch", json=batch, headers=AUTH).status_code == 200
    assert web.post("/v1/events", json=event_body(), headers=AUTH).status_code == 202
    stream = ScreeningStream.from_settings(redis_client, Settings(redis_url=redis_url))
    stream.ensure_group()
    entries = stream.read("batcher", 10)
    assert len(entries) == 4
    dispatch(entries, "screen.cpu", READ, time.time_ns())
    finished = spans.get_finished_spans()
    sends = {span.context.span_id for span in by_name(finished, "send events:ingest")}
    [process] = by_name(finished, "process events:ingest")
    assert {link.context.span_id for link in process.links} == sends
    assert attributes(process)["messaging.batch.message_count"] == 4
