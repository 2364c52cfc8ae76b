"""Screening tasks: a batch from the stream (decisions routed and acknowledged), or texts now."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from celeryconfig import SYNC_QUEUE
from core.keys import DEFAULT_TENANT
from core.models import Decision, Event
from core.screening import ScreenItem, UserHistory
from core.settings import Settings
from core.stream import Entry
from tasks.app import app
from tasks.metrics import STAGES
from tasks.runtime import Runtime, runtime

log = structlog.get_logger(__name__)


class PoisonedEvent(RuntimeError):
    """Raised by the fault-injection hook (CHAOS_POISON_MARKER) for an event's content."""


def _check_chaos(items: list[ScreenItem], settings: Settings) -> None:
    """Fault injection, off unless configured: fail or stall on marked content."""
    poison, slow = settings.chaos_poison_marker, settings.chaos_slow_marker
    if poison and any(poison in item.text for item in items):
        raise PoisonedEvent(f"fault injected: content contains {poison!r}")
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


def _user(entry: Entry, event: Event) -> tuple[str, str, str]:
    """Whose history an event counts in: (tenant, platform, user id)."""
    # Entries carry no tenant until tenants land; then read entry's tenant here, in one place.
    return DEFAULT_TENANT, event.platform.value, event.user_id


def _items(current: Runtime, parsed: list[tuple[Entry, Event]]) -> list[ScreenItem]:
    """What the engine needs of each event, with its sender's history.

    The counters count decided events; the events of this batch are not decided yet, so each
    one's burst count adds the same sender's earlier events in the batch, and itself.
    """
    users = [_user(entry, event) for entry, event in parsed]
    distinct = list(dict.fromkeys(users))
    counts = dict(zip(distinct, current.stream.user_history(distinct), strict=True))
    seen: Counter[tuple[str, str, str]] = Counter()
    items = []
    for (entry, event), user in zip(parsed, users, strict=True):
        seen[user] += 1
        high_risk, posts = counts[user]
        ingested = (
            datetime.fromtimestamp(entry.ingested_at_ms / 1000, UTC)
            if entry.ingested_at_ms
            else None
        )
        items.append(
            ScreenItem(
                text=event.content,
                event_id=event.event_id,
                platform=event.platform.value,
                user_id=event.user_id,
                ingested_at=ingested,
                history=UserHistory(high_risk_24h=high_risk, posts_last_minute=posts + seen[user]),
            )
        )
    return items


@app.task(name="tasks.screening.screen_batch", ignore_result=True, acks_late=True)
def screen_batch(raw_entries: list[list[Any]]) -> dict[str, int]:
    """Screen a batch of stream entries; route, store and acknowledge each decision once.

    An entry that cannot be parsed or screened stays pending with its failure recorded, while
    the rest of the batch is decided; the reclaimer retries it and dead-letters it after
    MAX_DELIVERIES deliveries.
    """
    current = runtime()
    entries = [Entry.from_list(values) for values in raw_entries]
    traceparents = [entry.traceparent for entry in entries]
    with current.spans.process(traceparents, current.consumer_name):
        return _screen_entries(current, entries, _queue(current))


def _queue(current: Runtime) -> str:
    """The metrics label of the queue the running task came from."""
    delivery = screen_batch.request.delivery_info or {}
    return current.metrics.queue(delivery.get("routing_key"))


def _screen_entries(current: Runtime, entries: list[Entry], queue: str) -> dict[str, int]:
    """Screen, route and acknowledge a batch's entries (see screen_batch)."""
    metrics = current.metrics
    metrics.waited(queue, (entry.ingested_at_ms for entry in entries), _now_ms())
    current.stream.claim(current.consumer_name, [entry.stream_id for entry in entries])
    parsed: list[tuple[Entry, Event]] = []
    for entry in entries:
        try:
            parsed.append((entry, Event.model_validate_json(entry.event)))
        except (ValidationError, ValueError) as exc:
            current.stream.record_failure(entry.stream_id, f"unreadable entry: {exc}")
            log.warning("entry_unreadable", stream_id=entry.stream_id, error=str(exc)[:300])
    failed = len(entries) - len(parsed)
    if failed:
        metrics.failed(queue, "unreadable", failed)
    items = _items(current, parsed)
    good = [(entry, event, item) for (entry, event), item in zip(parsed, items, strict=True)]
    try:
        decisions = _screen(current, [item for _, _, item in good])
        decided = good
        metrics.screened(queue, _stage_seconds(current), decisions)
    except Exception as exc:
        log.warning("batch_failed_screening_one_by_one", error=str(exc)[:300], size=len(good))
        decided, decisions = [], []
        for entry, event, item in good:
            try:
                decisions.append(_screen(current, [item])[0])
                decided.append((entry, event, item))
            except Exception as single:
                failed += 1
                metrics.failed(queue, "error")
                current.stream.record_failure(entry.stream_id, f"{type(single).__name__}: {single}")
                log.warning(
                    "event_failed_screening", stream_id=entry.stream_id, error=str(single)[:300]
                )
        metrics.screened(queue, _stage_seconds(current), decisions)
    finished = current.stream.decide(
        [entry for entry, _, _ in decided],
        decisions,
        [(event.platform.value, event.event_id) for _, event, _ in decided],
        [_user(entry, event) for entry, event, _ in decided],
    )
    written = [i for i, done in enumerate(finished) if done]
    metrics.decided(
        [decisions[i] for i in written],
        [decided[i][0].ingested_at_ms for i in written],
        _now_ms(),
    )
    metrics.gpu(os.environ.get("CUDA_VISIBLE_DEVICES") or None)
    result = {
        "decided": sum(finished),
        "already_decided": len(finished) - sum(finished),
        "failed": failed,
    }
    log.info("batch_screened", **result, worker=current.consumer_name)
    return result


@app.task(name="tasks.screening.screen_sync", ignore_result=True)
def screen_sync(items: list[dict[str, Any]], reply_key: str) -> int:
    """Screen texts (or an event) now and push the decisions to `reply_key` for the waiting
    request; nothing is queued or stored."""
    current = runtime()
    screen_items = [
        ScreenItem(
            text=item["text"],
            event_id=item.get("event_id"),
            platform=item.get("platform"),
            user_id=item.get("user_id"),
        )
        for item in items
    ]
    try:
        decisions = _screen(current, screen_items)
        current.metrics.screened(SYNC_QUEUE, _stage_seconds(current), decisions)
        reply = orjson.dumps({"decisions": [d.model_dump(mode="json") for d in decisions]})
    except Exception as exc:
        log.warning("sync_screening_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        reply = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]})
    pipe = current.client.pipeline(transaction=True)
    pipe.rpush(reply_key, reply)
    pipe.expire(reply_key, 60)  # nobody reads an answer after its request timed out
    pipe.execute()
    return len(screen_items)
