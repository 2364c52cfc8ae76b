"""Screening tasks: a batch from the stream (decisions routed and acknowledged), or texts now.

Tasks carry stream ids and tokens, never message text: a batch's events are read from the
ingest stream, and a synchronous request's texts from a short-lived Redis key, so neither the
broker nor Flower's task view ever holds what users wrote.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from celeryconfig import SYNC_QUEUE
from core.errors import CoreError
from core.models import Decision, Event
from core.screening import ScreenItem, UserHistory
from core.settings import Settings
from core.stream import Entry, ScreeningStream
from tasks.app import app
from tasks.metrics import STAGES
from tasks.runtime import Runtime, runtime

log = structlog.get_logger(__name__)
TOPPED_UP = "topped_up"  # the dispatched counter's source for entries a worker read itself


class PoisonedEvent(RuntimeError):
    """Raised by the fault-injection hook (CHAOS_POISON_MARKER) for an event's content."""


def failure_reason(exc: BaseException) -> str:
    """Why screening failed, fit for logs and the dead-letter stream: never the event's text.

    Validation errors name the invalid fields; the project's own errors keep their messages
    (written here, they quote no content); any other error is named with where it was raised,
    since its message may quote the text it failed on.
    """
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(map(str, e["loc"])) or "event" for e in exc.errors()})
        return f"unreadable entry: invalid {', '.join(fields)}"[:500]
    if isinstance(exc, CoreError | PoisonedEvent):
        return f"{type(exc).__name__}: {exc}"[:500]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def _check_chaos(items: list[ScreenItem], settings: Settings) -> None:
    """Fault injection, off unless configured: fail or stall on marked content."""
    poison, slow = settings.chaos_poison_marker, settings.chaos_slow_marker
    if poison and any(poison in item.text for item in items):
        raise PoisonedEvent("fault injected: the content holds CHAOS_POISON_MARKER")
    if slow and any(slow in item.text for item in items):
        time.sleep(settings.chaos_slow_s)


def _now_ms() -> int:
    """Wall-clock milliseconds, the unit of an entry's ingested_at."""
    return int(time.time() * 1000)


def _stage_seconds(current: Runtime) -> dict[str, float]:
    """Seconds the engine spent in each stage of the batch it screened last."""
    times = current.engine.times
    return {stage: getattr(times, stage) for stage in STAGES}


def _screen(current: Runtime, items: list[ScreenItem]) -> list[Decision]:
    """Screen items with the process's engine, after applying any new moderator reviews."""
    _check_chaos(items, current.settings)
    engine = current.engine
    current.live_examples.refresh(engine)
    return engine.screen(items)


@contextmanager
def held(current: Runtime, stream: ScreeningStream, stream_ids: list[str]) -> Iterator[None]:
    """Keep renewing this worker's claim on a batch while it works on it.

    The reclaimer takes back entries idle for RECLAIM_IDLE_S, which must mean that their worker
    died: a live worker that is slow (loading the engine on its first batch, or a long batch)
    renews its claim three times per RECLAIM_IDLE_S, so its entries are neither dispatched again
    nor, after MAX_DELIVERIES such reclaims, dead-lettered while it is still working on them.
    """
    stop = threading.Event()
    every_s = current.settings.reclaim_idle_s / 3

    def renew() -> None:
        while not stop.wait(every_s):
            try:
                stream.hold(current.consumer_name, stream_ids)
            except CoreError as exc:  # Redis away: the next renewal (or the reclaimer) copes
                log.warning("claim_renewal_failed", error=str(exc), size=len(stream_ids))

    renewal = threading.Thread(target=renew, name="claim-renewal", daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()


def read_entry(entry: Entry) -> ScreenItem:
    """What the engine needs of a stream entry's event (the same model the front door
    validated it with, so every accepted event is readable here)."""
    event = Event.model_validate_json(entry.event)
    ingested = (
        datetime.fromtimestamp(entry.ingested_at_ms / 1000, UTC) if entry.ingested_at_ms else None
    )
    return ScreenItem(
        text=event.content,
        event_id=event.event_id,
        platform=event.platform.value,
        user_id=event.user_id,
        ingested_at=ingested,
        tenant=entry.tenant,
    )


def with_history(
    current: Runtime, read: list[tuple[Entry, ScreenItem]]
) -> list[tuple[Entry, ScreenItem]]:
    """Each event with its sender's history in its tenant (`Entry.sender`, the key the decide
    step counts it under).

    The counters count decided events; the events of this batch are not decided yet, so each
    one's burst count adds the same sender's earlier events in the batch, and itself.
    """
    senders = [entry.sender() for entry, _ in read]
    distinct = list(dict.fromkeys(s for s in senders if s is not None))
    counts = dict(zip(distinct, current.screening.user_history(distinct), strict=True))
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for (entry, item), sender in zip(read, senders, strict=True):
        if sender is None:
            out.append((entry, item))
            continue
        seen[sender] += 1
        high_risk, posts = counts[sender]
        history = UserHistory(high_risk_24h=high_risk, posts_last_minute=posts + seen[sender])
        out.append((entry, replace(item, history=history)))
    return out


def _screen_entries(
    current: Runtime, stream: ScreeningStream, entries: list[Entry], queue: str
) -> tuple[list[bool], int]:
    """Read, screen and decide entries, isolating the ones that fail; returns, per decided
    entry, whether this call finished it, and how many failed."""
    metrics = current.metrics
    metrics.waited(queue, (entry.ingested_at_ms for entry in entries), _now_ms())
    good: list[tuple[Entry, ScreenItem]] = []
    for entry in entries:
        try:
            good.append((entry, read_entry(entry)))
        except (ValidationError, ValueError) as exc:
            reason = failure_reason(exc)
            stream.record_failure(entry.stream_id, reason)
            log.warning("entry_unreadable", stream_id=entry.stream_id, error=reason)
    failed = len(entries) - len(good)
    if failed:
        metrics.failed(queue, "unreadable", failed)
    good = with_history(current, good)
    try:
        decisions = _screen(current, [item for _, item in good])
        decided = good
        metrics.screened(queue, _stage_seconds(current), decisions)
    except Exception as exc:
        log.warning("batch_failed_screening_one_by_one", error=failure_reason(exc), size=len(good))
        decided, decisions = [], []
        for entry, item in good:
            try:
                decisions.append(_screen(current, [item])[0])
                decided.append((entry, item))
            except Exception as single:
                failed += 1
                metrics.failed(queue, "error")
                reason = failure_reason(single)
                stream.record_failure(entry.stream_id, reason)
                log.warning("event_failed_screening", stream_id=entry.stream_id, error=reason)
        metrics.screened(queue, _stage_seconds(current), decisions)
    finished = stream.decide([entry for entry, _ in decided], decisions)
    written = [i for i, done in enumerate(finished) if done]
    metrics.decided(
        [decisions[i] for i in written],
        [decided[i][0].ingested_at_ms for i in written],
        _now_ms(),
    )
    metrics.gpu(os.environ.get("CUDA_VISIBLE_DEVICES") or None)
    return finished, failed


def top_up(current: Runtime, stream: ScreeningStream, room: int) -> list[Entry]:
    """Up to `room` new entries that reached the stream since the batcher sent this batch, read
    for this worker (pending under its name, so a worker that dies leaves them to the reclaimer).

    A batch waits in the broker while the one before it is screened; events that arrive in the
    meantime join it here instead of waiting, in the stream, for a batch of their own behind it.
    """
    if room <= 0:
        return []
    try:
        entries = stream.read(current.consumer_name, room)
    except CoreError as exc:  # the batch it was sent goes ahead; the batcher reads these later
        log.warning("top_up_failed", error=str(exc))
        return []
    if entries:
        current.batcher_metrics.dispatched.labels(_queue(current), TOPPED_UP).inc(len(entries))
    return entries


@app.task(name="tasks.screening.screen_batch", ignore_result=True, acks_late=True)
def screen_batch(stream_ids: list[Any], shard: int | None = None) -> dict[str, int]:
    """Screen a batch of stream entries, named by their ids (and, on a Redis Cluster, their
    shard); route, store and acknowledge each decision once.

    An entry that cannot be parsed or screened stays pending with its failure recorded, while
    the rest of the batch is decided; the reclaimer retries it and dead-letters it after
    MAX_DELIVERIES deliveries.
    """
    current = runtime()
    # A task queued by an earlier version carries [stream id, event, ...] per entry.
    ids = [str(item[0]) if isinstance(item, list) else str(item) for item in stream_ids]
    stream = current.screening.shard(shard)
    claimed = stream.claim(current.consumer_name, ids)
    entries = claimed + top_up(current, stream, current.settings.batch_size - len(claimed))
    traceparents = [entry.traceparent for entry in entries]
    with (
        current.spans.process(traceparents, current.consumer_name),
        held(current, stream, [entry.stream_id for entry in entries]),
    ):
        finished, failed = _screen_entries(current, stream, entries, _queue(current))
    result = {
        "decided": sum(finished),
        "already_decided": len(ids) - len(claimed) + len(finished) - sum(finished),
        "failed": failed,
    }
    log.info("batch_screened", **result, worker=current.consumer_name)
    return result


def _queue(current: Runtime) -> str:
    """The metrics label of the queue the running task came from."""
    delivery = screen_batch.request.delivery_info or {}
    return current.metrics.queue(delivery.get("routing_key"))


@app.task(name="tasks.screening.screen_sync", ignore_result=True)
def screen_sync(token: str) -> int:
    """Screen the texts (or event) a waiting request left under `token` and push the decisions
    to its reply list; nothing is queued or stored."""
    current = runtime()
    keys = current.keys
    raw = current.client.getdel(keys.sync_request(token))
    if raw is None:  # the request timed out and its texts expired: nobody waits for an answer
        log.info("sync_request_expired", token=token)
        return 0
    items: list[dict[str, Any]] = orjson.loads(raw)
    screen_items = [
        ScreenItem(
            text=item["text"],
            event_id=item.get("event_id"),
            platform=item.get("platform"),
            user_id=item.get("user_id"),
            tenant=item.get("tenant"),
            counts=False,
        )
        for item in items
    ]
    try:
        decisions = _screen(current, screen_items)
        current.metrics.screened(SYNC_QUEUE, _stage_seconds(current), decisions)
        reply = orjson.dumps({"decisions": [d.model_dump(mode="json") for d in decisions]})
    except Exception as exc:
        reason = failure_reason(exc)
        log.warning("sync_screening_failed", token=token, error=reason)
        reply = orjson.dumps({"error": reason})
    pipe = current.client.pipeline(transaction=True)
    pipe.rpush(keys.sync_reply(token), reply)
    pipe.expire(keys.sync_reply(token), 60)  # nobody reads an answer after its request timed out
    pipe.execute()
    return len(screen_items)
