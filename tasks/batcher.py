"""Beat-ticked tasks that feed the screening queues from the ingest stream.

`drain` reads new entries through the consumer group for one beat interval, in batches, and
sends each batch (its stream ids only) to the chosen queue; it stops reading when no live queue
has room, so the backlog waits in the durable stream rather than in broker lists. A queue that
already holds a batch for each of its workers gets only full ones: a waiting batch takes in the
entries that arrive before a worker starts it (tasks.screening.top_up), so at low load each
event goes into the first batch screened after it arrives, and at high load batches are full.
Two overlapping ticks are safe: a consumer-group read hands each entry to one reader only.
`reclaim` takes back entries whose worker died or failed (idle past the timeout) and dispatches
them again, or dead-letters them after too many deliveries; it also trims acknowledged entries.
On a Redis Cluster both walk the stream's shards, each read starting one shard further along,
and a batch holds the entries of one shard (its task names the shard).
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from core.stream import Entry
from core.stream.shards import ShardedScreening
from tasks.app import app
from tasks.runtime import runtime
from tasks.screening import screen_batch

log = structlog.get_logger(__name__)

BATCHER = "batcher"
READ, CLAIM = "XREADGROUP", "XCLAIM"  # how a batch was taken from the consumer group


def dispatch(
    entries: list[Entry], queue: str, operation: str, started_ns: int, shard: int = 0
) -> None:
    """Send one batch to a screening queue, inside the batch's receive span: its stream ids only
    (the worker reads the events from the stream, so the broker never holds their content).

    The span links to each entry's trace, and the task continues the span's own trace (Celery's
    instrumentation puts it in the task's headers), so each event's trace reaches its decision.
    """
    current = runtime()
    traceparents = [entry.traceparent for entry in entries]
    # One Redis: the task as it always was; a cluster: the shard the ids belong to as well.
    kwargs = {"shard": shard} if current.layout.clustered else {}
    with current.spans.receive(traceparents, operation, started_ns):
        screen_batch.apply_async(
            args=[[entry.stream_id for entry in entries]], kwargs=kwargs, queue=queue
        )
    source = "new" if operation == READ else "reclaimed"
    current.batcher_metrics.dispatched.labels(queue, source).inc(len(entries))


@app.task(name="tasks.batcher.drain", ignore_result=True)
def drain() -> dict[str, Any]:
    """Move new stream entries to screening queues for one beat interval (consecutive ticks
    overlap by up to one read, so the stream is never left without a reader)."""
    current = runtime()
    settings = current.settings
    screening, router = current.screening, current.router
    for stream in screening.shards:
        stream.ensure_group()
    # Until the next tick has begun: a drain that stopped short of it left the stream unread
    # in between (65 ms between drains, a median over 19 ticks at half load in bench-e2e).
    deadline = time.monotonic() + settings.drain_interval_s
    batches = events = 0
    while time.monotonic() < deadline:
        picked = router.pick()
        if picked is None:
            current.batcher_metrics.held_back.inc()
            time.sleep(settings.read_block_ms / 1000)
            continue
        queue, each_worker_has_one = picked
        if each_worker_has_one and not full_batch_unread(screening, settings.batch_size):
            # A batch waiting there takes in what is new when a worker starts it (screen_batch's
            # top-up); another, partial one would only queue those events behind it.
            time.sleep(settings.queue_poll_ms / 1000)
            continue
        started = time.time_ns()
        shard, entries = read_next(screening, settings.batch_size, settings.read_block_ms)
        if entries:
            dispatch(entries, queue, READ, started, shard)
            batches += 1
            events += len(entries)
    if batches:
        log.info("drained", batches=batches, events=events)
    return {"batches": batches, "events": events}


def full_batch_unread(screening: ShardedScreening, count: int) -> bool:
    """Whether some shard holds at least `count` entries no one has read yet."""
    return any(stream.unread(count) >= count for stream in screening.shards)


def read_next(screening: ShardedScreening, count: int, block_ms: int) -> tuple[int, list[Entry]]:
    """New entries of the next shard that has some, in turn; only the last shard of the turn
    waits up to `block_ms` (the only one, on one Redis), so no shard delays the others."""
    order = screening.turn()
    for i, shard in enumerate(order):
        wait = block_ms if i == len(order) - 1 else None
        entries = screening.shard(shard).read(BATCHER, count, wait)
        if entries:
            return shard, entries
    return order[-1], []


@app.task(name="tasks.batcher.reclaim", ignore_result=True)
def reclaim() -> dict[str, Any]:
    """Dispatch again what dead or failing workers left pending; dead-letter the hopeless."""
    current = runtime()
    settings = current.settings
    dispatched = dead = trimmed = 0
    queue = None
    for shard, stream in enumerate(current.screening.shards):
        stream.ensure_group()
        queue = current.router.choose()
        if queue is not None:
            started = time.time_ns()
            idle_ms = int(settings.reclaim_idle_s * 1000)
            found = stream.reclaim(BATCHER, idle_ms, settings.batch_size)
            dead += found.dead_lettered
            if found.entries:
                dispatch(found.entries, queue, CLAIM, started, shard)
                dispatched += len(found.entries)
        trimmed += stream.trim(settings.stream_keep_s)
        trimmed += sum(stream.trim_decisions(settings.decision_stream_maxlen).values())
    if dispatched or dead:
        log.info("reclaimed", dispatched=dispatched, dead_lettered=dead, queue=queue)
    return {"dispatched": dispatched, "dead_lettered": dead, "trimmed": trimmed}
