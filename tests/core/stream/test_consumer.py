"""The consumer group on a real Redis: one outcome per entry, reclaim, dead-letter, trim, ledger."""

from __future__ import annotations

import time

import redis

from core.models import Platform
from core.stream import EventStream, ScreeningStream, decode_record
from tests.factories import decision_for, ingest


def test_a_redelivered_entry_is_decided_once(redis_client: redis.Redis) -> None:
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    ingest(redis_client, 3)
    entries = stream.read("c1", 10)
    assert len(entries) == 3
    decisions = [decision_for(e, "high" if i == 0 else "low") for i, e in enumerate(entries)]
    assert stream.decide(entries, decisions) == [True, True, True]
    assert stream.decide(entries, decisions) == [False, False, False]
    assert redis_client.xlen(stream.keys.high_stream) == 1
    assert redis_client.xlen(stream.keys.low_stream) == 2
    ledger = stream.ledger()
    assert (ledger.accepted, ledger.high, ledger.low, ledger.in_flight) == (3, 1, 2, 0)
    assert ledger.balanced


def test_stored_decision_record_carries_the_stream_id(redis_client: redis.Redis) -> None:
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    [event] = ingest(redis_client, 1)
    entries = stream.read("c1", 1)
    stream.decide(entries, [decision_for(entries[0])])
    raw = redis_client.get(stream.keys.decision("default", "discord", event.event_id))
    assert isinstance(raw, bytes)
    stored = decode_record(raw)
    assert stored.stream_id == entries[0].stream_id
    assert stored.decision.route == "low"
    state = EventStream(redis_client).lookup("default", Platform.DISCORD, event.event_id)
    assert state is not None and state.state == "screened" and state.decision is not None
    assert state.stream_id == entries[0].stream_id


def test_idle_entries_are_reclaimed_then_dead_lettered_after_max_deliveries(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=3)
    stream.ensure_group()
    ingest(redis_client, 2)
    entries = stream.read("dead-worker", 10)  # delivery 1
    stream.record_failure(entries[0].stream_id, "ValueError: model exploded")
    time.sleep(0.05)
    again = stream.reclaim("batcher", min_idle_ms=10)  # delivery 2
    assert [e.stream_id for e in again.entries] == [e.stream_id for e in entries]
    assert again.dead_lettered == 0
    time.sleep(0.05)
    assert len(stream.reclaim("batcher", min_idle_ms=10).entries) == 2  # delivery 3
    time.sleep(0.05)
    final = stream.reclaim("batcher", min_idle_ms=10)
    assert final.entries == [] and final.dead_lettered == 2
    dead = redis_client.xrange(stream.keys.dlq_stream)
    assert dead[0][1][b"reason"] == b"ValueError: model exploded"
    assert dead[1][1][b"reason"].startswith(b"not finished after 3 deliveries")
    ledger = stream.ledger()
    assert (ledger.dead_lettered, ledger.in_flight) == (2, 0) and ledger.balanced


def test_entries_still_being_worked_on_are_not_reclaimed(redis_client: redis.Redis) -> None:
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    ingest(redis_client, 1)
    entries = stream.read("batcher", 1)
    time.sleep(0.05)
    stream.claim("worker:1", [entries[0].stream_id])  # a worker picks the batch up now
    assert stream.reclaim("batcher", min_idle_ms=40).entries == []


def test_a_dead_lettered_entry_cannot_also_be_decided(redis_client: redis.Redis) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    stream.ensure_group()
    ingest(redis_client, 1)
    entries = stream.read("c1", 1)
    time.sleep(0.02)
    assert stream.reclaim("batcher", min_idle_ms=5).dead_lettered == 1
    assert stream.decide(entries, [decision_for(entries[0])]) == [False]
    ledger = stream.ledger()
    assert (ledger.accepted, ledger.low, ledger.dead_lettered) == (1, 0, 1) and ledger.balanced


def test_trim_never_drops_unread_or_pending_entries(redis_client: redis.Redis) -> None:
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    ingest(redis_client, 6)
    first = stream.read("c1", 2)
    stream.decide(first, [decision_for(e) for e in first])  # 2 acked
    stream.read("c1", 2)  # 2 pending, 2 unread
    time.sleep(0.01)  # entries of the current millisecond are not yet older than keep_s=0
    assert stream.trim(keep_s=0) == 2
    assert redis_client.xlen("events:ingest") == 4
    ledger = stream.ledger()
    assert ledger.in_flight == 4 and ledger.balanced


def test_claim_reads_pending_entries_from_the_stream_and_skips_finished_ones(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    ingest(redis_client, 3)
    read = stream.read("batcher", 3)
    stream.decide(read[:1], [decision_for(read[0])])
    claimed = stream.claim("worker:1", [entry.stream_id for entry in read])
    assert claimed == read[1:]  # the decided one is left out; the others come with their event
    assert all(entry.tenant == "default" and entry.event for entry in claimed)


def test_a_dead_lettered_event_is_looked_up_as_such_with_its_reason_not_its_content(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    stream.ensure_group()
    [event] = ingest(redis_client, 1)
    [entry] = stream.read("c1", 1)
    stream.record_failure(entry.stream_id, "PoisonedEvent: fault injected")
    time.sleep(0.02)
    assert stream.reclaim("batcher", min_idle_ms=5).dead_lettered == 1
    state = EventStream(redis_client).lookup("default", Platform.DISCORD, event.event_id)
    assert state is not None and state.state == "dead_lettered"
    assert state.reason == "PoisonedEvent: fault injected"
    assert state.stream_id == entry.stream_id and state.decision is None
    raw = redis_client.get(stream.keys.decision("default", "discord", event.event_id))
    assert isinstance(raw, bytes) and event.content.encode() not in raw
    assert redis_client.ttl(stream.keys.decision("default", "discord", event.event_id)) > 0
