"""Replaying the dead-letter stream on a real Redis: once each, and the ledger balanced."""

from __future__ import annotations

import time

import orjson
import redis

from core.stream import DeadLetters, ScreeningStream, read_status
from tests.factories import decision_for, ingest


def dead_letter(stream: ScreeningStream, count: int) -> list[str]:
    """Accept `count` events and dead-letter all of them; their ingest-stream ids."""
    stream.ensure_group()
    ingest(stream.client, count)
    entries = stream.read("dead-worker", count)
    for entry in entries:
        stream.record_failure(entry.stream_id, "RuntimeError: rules file broken")
    time.sleep(0.02)
    assert stream.reclaim("batcher", min_idle_ms=5).dead_lettered == count
    return [entry.stream_id for entry in entries]


def test_replay_sends_each_dead_letter_back_once_and_keeps_the_ledger_balanced(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    old_ids = dead_letter(stream, 3)
    before = stream.ledger()
    assert (before.accepted, before.dead_lettered, before.in_flight) == (3, 3, 0)
    assert before.balanced

    replayed = DeadLetters(redis_client).replay()

    assert replayed.count == 3
    ledger = stream.ledger()
    assert (ledger.dead_lettered, ledger.in_flight, ledger.replayed) == (0, 3, 3)
    assert ledger.accepted == 3 and ledger.balanced
    assert redis_client.xlen(stream.keys.dlq_stream) == 0
    back = redis_client.xrange(stream.keys.ingest_stream, min=f"({old_ids[-1]}")
    assert [i.decode() for i, _ in back] == replayed.new_stream_ids
    assert [f[b"replayed_from"].decode() for _, f in back] == old_ids
    assert DeadLetters(redis_client).replay().count == 0  # nothing is sent twice


def test_replayed_events_are_screened_again_and_end_high_or_low(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    dead_letter(stream, 2)
    DeadLetters(redis_client).replay()
    entries = stream.read("worker", 10)
    assert len(entries) == 2
    assert all(orjson.loads(e.event)["content"] for e in entries)
    decisions = [decision_for(entries[0], "high"), decision_for(entries[1], "low")]
    assert stream.decide(entries, decisions) == [True, True]
    ledger = stream.ledger()
    assert (ledger.accepted, ledger.high, ledger.low, ledger.dead_lettered) == (2, 1, 1, 0)
    assert ledger.in_flight == 0 and ledger.balanced


def test_replay_leaves_events_dead_lettered_during_it_for_the_next_one(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    dead_letter(stream, 2)
    letters = DeadLetters(redis_client)
    assert letters.replay(limit=1).count == 1
    assert [d.reason for d in letters.oldest()] == ["RuntimeError: rules file broken"]
    assert letters.replay().count == 1
    assert stream.ledger().balanced


def test_status_reports_backlog_pending_and_the_age_of_the_oldest_unprocessed_entry(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    stream.ensure_group()
    ingest(redis_client, 3)
    first = stream.read("worker", 1)[0]
    status = read_status(redis_client, stream.keys)
    assert (status.length, status.unprocessed, status.pending) == (3, 3, 1)
    assert status.oldest_unprocessed_ms == int(first.stream_id.split("-")[0])
    stream.decide([first], [decision_for(first)])
    later = read_status(redis_client, stream.keys)
    assert later.pending == 0 and later.unprocessed == 2
    assert later.oldest_unprocessed_ms is not None
    assert later.oldest_unprocessed_ms >= status.oldest_unprocessed_ms
    assert later.oldest_age_s(later.oldest_unprocessed_ms + 2500) == 2.5
    rest = stream.read("worker", 10)
    stream.decide(rest, [decision_for(e) for e in rest])
    done = read_status(redis_client, stream.keys)
    assert (done.unprocessed, done.oldest_unprocessed_ms, done.dead_letters) == (0, None, 0)


def test_a_replayed_event_names_its_first_acceptance_on_every_outcome_stream(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client, max_deliveries=1)
    [first_id] = dead_letter(stream, 1)
    DeadLetters(redis_client).replay()
    [again] = stream.read("worker", 1)
    assert again.replayed_from == first_id
    stream.record_failure(again.stream_id, "RuntimeError: still broken")
    time.sleep(0.02)
    assert stream.reclaim("batcher", min_idle_ms=5).dead_lettered == 1  # fails once more
    [(_, dead)] = redis_client.xrange(stream.keys.dlq_stream)
    assert dead[b"replayed_from"].decode() == first_id
    DeadLetters(redis_client).replay()  # a second replay still names the first acceptance
    [third] = stream.read("worker", 1)
    assert third.replayed_from == first_id and third.stream_id != again.stream_id
    assert stream.decide([third], [decision_for(third, "high")]) == [True]
    [(_, decided)] = redis_client.xrange(stream.keys.high_stream)
    assert decided[b"replayed_from"].decode() == first_id
    assert decided[b"stream_id"].decode() == third.stream_id
    assert stream.ledger().balanced
