"""The backlog and the ledger count what is really unread and pending, whatever Redis says."""

from __future__ import annotations

import time

import redis

from core.models import Event
from core.stream import Backlog, DeadLetters, EventStream, ScreeningStream
from devtools.redis_server import RedisServer
from tests.factories import decision_for, event_body, ingest


def screen_all(client: redis.Redis, stream: ScreeningStream, count: int) -> None:
    """Accept `count` events, read them as the batcher does, claim and decide them."""
    ingest(client, count)
    read = stream.read("batcher", count)
    stream.claim("worker:1", [entry.stream_id for entry in read])
    stream.decide(read, [decision_for(e) for e in read])


def test_append_only_rewrites_and_restarts_leave_no_false_backlog(
    own_redis: RedisServer,
) -> None:
    client = redis.Redis.from_url(own_redis.url)
    stream, front = ScreeningStream(client), EventStream(client)
    stream.ensure_group()
    for _ in range(3):
        screen_all(client, stream, 10)
        own_redis.rewrite_aof()
        # Redis 7.0 replays these reads from the append-only file without advancing the
        # group's read counter, so its `lag` claims them as unread after the restart.
        screen_all(client, stream, 10)
        own_redis.restart()
        assert front.backlog() == 0
        ledger = stream.ledger()
        assert ledger.in_flight == 0 and ledger.balanced, ledger
    ingest(client, 5)
    assert front.backlog() == 5
    read = stream.read("batcher", 2)
    assert front.backlog() == 5  # 2 pending + 3 unread
    stream.decide(read, [decision_for(e) for e in read])
    assert front.backlog() == 3
    assert stream.ledger().in_flight == 3 and stream.ledger().balanced
    client.close()


def test_backlog_before_the_group_exists_is_the_whole_stream(redis_client: redis.Redis) -> None:
    ingest(redis_client, 4)
    assert EventStream(redis_client).backlog() == 4
    ledger = ScreeningStream(redis_client).ledger()
    assert (ledger.accepted, ledger.in_flight) == (4, 4) and ledger.balanced


def test_entries_without_a_sequence_number_are_counted_one_by_one(
    redis_client: redis.Redis,
) -> None:
    # Entries queued before sequence numbers existed (an upgrade) are still counted exactly.
    stream = ScreeningStream(redis_client)
    stream.ensure_group()
    for i in range(7):
        redis_client.xadd("events:ingest", {"event": f'{{"n":{i}}}'})
    redis_client.incrby("events:count:accepted", 7)
    stream.read("c1", 3)
    assert EventStream(redis_client).backlog() == 7
    ledger = stream.ledger()
    assert ledger.in_flight == 7 and ledger.balanced


def test_replayed_dead_letters_are_counted_as_unread_among_new_entries(
    redis_client: redis.Redis,
) -> None:
    stream, front = ScreeningStream(redis_client, max_deliveries=1), EventStream(redis_client)
    stream.ensure_group()
    ingest(redis_client, 5)
    stream.read("worker", 2)
    time.sleep(0.02)
    assert stream.reclaim("batcher", min_idle_ms=5).dead_lettered == 2
    assert front.backlog() == 3
    ingest(redis_client, 3)
    assert DeadLetters(redis_client).replay().count == 2  # at the end of the stream, with a seq
    ingest(redis_client, 1)
    assert front.backlog() == 3 + 3 + 2 + 1
    ledger = stream.ledger()
    assert (ledger.dead_lettered, ledger.replayed, ledger.in_flight) == (0, 2, 9)
    assert ledger.balanced


def test_each_tenants_backlog_moves_with_its_events_through_every_outcome(
    redis_client: redis.Redis,
) -> None:
    stream, front = ScreeningStream(redis_client), EventStream(redis_client)
    stream.ensure_group()
    events = [Event.model_validate(event_body()) for _ in range(8)]
    front.ingest(events[:5], tenant="alpha")
    front.ingest(events[5:], tenant="beta")
    front.ingest(events[:2], tenant="alpha")  # duplicates count nothing
    assert front.backlog_by_tenant() == Backlog(8, {"alpha": 5, "beta": 3})
    read = stream.read("batcher", 8)
    alpha = [e for e in read if e.tenant == "alpha"]
    beta = [e for e in read if e.tenant == "beta"]
    stream.decide(alpha[:2], [decision_for(e) for e in alpha[:2]])
    stream.dead_letter(beta[:1], {beta[0].stream_id: 3})
    assert front.backlog_by_tenant() == Backlog(5, {"alpha": 3, "beta": 2})
    DeadLetters(redis_client).replay()  # the dead letter is in flight again, for beta
    assert front.backlog_by_tenant() == Backlog(6, {"alpha": 3, "beta": 3})
    assert stream.ledger().balanced
