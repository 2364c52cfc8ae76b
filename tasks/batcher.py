"""Beat-ticked tasks that feed the screening queues from the ingest stream.

`drain` reads new entries through the consumer group for up to one beat interval, in batches,
and sends each batch (its stream ids only) to the chosen queue; it stops reading when no live
queue has room, so the backlog waits in the durable stream rather than in broker lists. Two
overlapping ticks are safe: a consumer-group read hands each entry to one reader only.
`reclaim` takes back entries whose worker died or failed (idle past the timeout) and dispatches
them again, or dead-letters them after too many deliveries; it also trims acknowledged entries.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from core.stream import Entry
from tasks.app import app
from tasks.runtime import runtime
from tasks.screening import screen_batch

log = structlog.get_logger(__name__)

BATCHER = "batcher"
READ, CLAIM = "XREADGROUP", "XCLAIM"  # how a batch was taken from the consumer group


def dispatch(entries: list[Entry], queue: str, operation: str, started_ns: int) -> None:
    """Send one batch to a screening queue, inside the batch's receive span: its stream ids only
    (the worker reads the events from the stream, so the broker never holds their content).

    The span links to each entry's trace, and the task continues the span's own trace (Celery's
    instrumentation puts it in the task's headers), so each event's trace reaches its decision.
    """
    current = runtime()
    traceparents = [entry.traceparent for entry in entries]
    with current.spans.receive(traceparents, operation, started_ns):
        screen_batch.apply_async(args=[[entry.stream_id for entry in entries]], queue=queue)
    source = "new" if operation == READ else "reclaimed"
    current.batcher_metrics.dispatched.labels(queue, source).inc(len(entries))


@app.task(name="tasks.batcher.drain", ignore_result=True)
def drain() -> dict[str, Any]:
    """Move new stream entries to screening queues for up to one beat interval."""
    current = runtime()
    settings = current.settings
    stream, router = current.stream, current.router
    stream.ensure_group()
    deadline = time.monotonic() + settings.drain_interval_s * 0.9
    batches = events = 0
    while time.monotonic() < deadline:
        queue = router.choose()
        if queue is None:
            current.batcher_metrics.held_back.inc()
            time.sleep(settings.read_block_ms / 1000)
            continue
        started = time.time_ns()
        entries = stream.read(BATCHER, settings.batch_size, settings.read_block_ms)
        if entries:
            dispatch(entries, queue, READ, started)
            batches += 1
            events += len(entries)
    if batches:
        log.info("drained", batches=batches, events=events)
    return {"batches": batches, "events": events}


@app.task(name="tasks.batcher.reclaim", ignore_result=True)
def reclaim() -> dict[str, Any]:
    """Dispatch again what dead or failing workers left pending; dead-letter the hopeless."""
    current = runtime()
    settings = current.settings
    stream, router = current.stream, current.router
    stream.ensure_group()
    queue = router.choose()
    dispatched = dead = 0
    if queue is not None:
        started = time.time_ns()
        found = stream.reclaim(BATCHER, int(settings.reclaim_idle_s * 1000), settings.batch_size)
        dead = found.dead_lettered
        if found.entries:
            dispatch(found.entries, queue, CLAIM, started)
            dispatched = len(found.entries)
    trimmed = stream.trim(settings.stream_keep_s)
    trimmed += sum(stream.trim_decisions(settings.decision_stream_maxlen).values())
    if dispatched or dead:
        log.info("reclaimed", dispatched=dispatched, dead_lettered=dead, queue=queue)
    return {"dispatched": dispatched, "dead_lettered": dead, "trimmed": trimmed}
