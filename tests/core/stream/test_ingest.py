"""EventStream on a real Redis: atomic dedup + XADD, lookups and backlog readings."""

from __future__ import annotations

import threading

import redis

from core.models import Platform
from core.stream import EventStream, IngestRequest
from tests.factories import make_event


def test_ingest_classifies_new_duplicate_and_conflicting_events(redis_client: redis.Redis) -> None:
    stream = EventStream(redis_client)
    event = make_event()
    changed = event.model_copy(update={"content": "changed"})
    first, again, conflict = stream.ingest(
        [event, event, changed], "rid", "tp", now_ms=1_000, tenant="default"
    )
    assert first.status == "accepted"
    assert again.status == "duplicate"
    assert again.stream_id == first.stream_id
    assert conflict.status == "conflict"
    assert again.ingested_at_ms == 1_000
    assert redis_client.xlen("events:ingest") == 1


def test_dedup_record_and_stream_entry_are_written_together(redis_client: redis.Redis) -> None:
    stream = EventStream(redis_client, window_s=120)
    event = make_event()
    [result] = stream.ingest([event], tenant="default")
    record = redis_client.get(stream.keys.dedup("default", "discord", event.event_id))
    assert record is not None
    assert record.decode().split(" ")[1] == result.stream_id
    assert 0 < redis_client.ttl(stream.keys.dedup("default", "discord", event.event_id)) <= 120
    [(entry_id, fields)] = redis_client.xrange("events:ingest")
    assert entry_id.decode() == result.stream_id
    assert fields[b"event"] == event.payload()


def test_racing_threads_queue_one_entry_per_identity(redis_url: str) -> None:
    event = make_event()
    statuses: list[str] = []

    def submit() -> None:
        client = redis.Redis.from_url(redis_url)
        statuses.extend(r.status for r in EventStream(client).ingest([event], tenant="default"))
        client.close()

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 19
    check = redis.Redis.from_url(redis_url)
    assert check.xlen("events:ingest") == 1


def test_lookup_knows_queued_events_only(redis_client: redis.Redis) -> None:
    stream = EventStream(redis_client)
    event = make_event(platform="telegram")
    [result] = stream.ingest([event], now_ms=1_700_000_000_000, tenant="default")
    state = stream.lookup("default", Platform.TELEGRAM, event.event_id)
    assert state is not None
    assert state.state == "queued"
    assert state.stream_id == result.stream_id
    assert state.ingested_at.timestamp() == 1_700_000_000
    assert stream.lookup("default", Platform.DISCORD, event.event_id) is None


def test_backlog_is_length_before_a_group_and_lag_plus_pending_after(
    redis_client: redis.Redis,
) -> None:
    stream = EventStream(redis_client)
    assert stream.backlog() == 0
    stream.ingest([make_event() for _ in range(5)], tenant="default")
    assert stream.backlog() == 5
    redis_client.xgroup_create("events:ingest", "screeners", id="0")
    assert stream.backlog() == 5
    read = redis_client.xreadgroup("screeners", "c", {"events:ingest": ">"}, count=3)
    assert stream.backlog() == 5  # 2 unread + 3 pending
    redis_client.xack("events:ingest", "screeners", *[i for i, _ in read[0][1]])
    assert stream.backlog() == 2


def test_one_identity_from_two_tenants_is_two_events_each_looked_up_by_its_tenant(
    redis_client: redis.Redis,
) -> None:
    stream = EventStream(redis_client)
    event = make_event()
    other = event.model_copy(update={"content": "another platform's message"})
    [mine] = stream.ingest([event], tenant="acme")
    [theirs] = stream.ingest([other], tenant="globex")
    assert (mine.status, theirs.status) == ("accepted", "accepted")
    assert mine.stream_id != theirs.stream_id
    assert stream.ingest([event], tenant="acme")[0].status == "duplicate"
    acme = stream.lookup("acme", Platform.DISCORD, event.event_id)
    globex = stream.lookup("globex", Platform.DISCORD, event.event_id)
    assert acme is not None and acme.stream_id == mine.stream_id and acme.tenant == "acme"
    assert globex is not None and globex.stream_id == theirs.stream_id
    assert stream.lookup("initech", Platform.DISCORD, event.event_id) is None
    tenants = [fields[b"tenant"] for _, fields in redis_client.xrange("events:ingest")]
    assert tenants == [b"acme", b"globex"]


def test_one_call_keeps_each_requests_request_id_trace_and_tenant(
    redis_client: redis.Redis,
) -> None:
    stream = EventStream(redis_client)
    shared = make_event()
    own, other = [make_event(), shared], [make_event(), shared, make_event()]
    requests = [
        IngestRequest(own, "acme", "rid-a", "tp-a"),
        IngestRequest([], "acme"),
        IngestRequest(other, "globex", "rid-b"),
    ]
    first, none, second = stream.ingest_many(requests, now_ms=5_000)
    assert none == []
    assert [r.status for r in first] == ["accepted", "accepted"]
    # The same identity under another tenant is another event; within a tenant it is a retry.
    assert [r.status for r in second] == ["accepted", "accepted", "accepted"]
    again = stream.ingest_many([IngestRequest([shared], "acme"), IngestRequest([shared], "acme")])
    assert [r.status for results in again for r in results] == ["duplicate", "duplicate"]
    entries = {i.decode(): f for i, f in redis_client.xrange("events:ingest")}
    for results, (request_id, trace, tenant) in (
        (first, ("rid-a", "tp-a", "acme")),
        (second, ("rid-b", "", "globex")),
    ):
        for result in results:
            fields = entries[result.stream_id]
            assert fields[b"request_id"].decode() == request_id
            assert fields[b"traceparent"].decode() == trace
            assert fields[b"tenant"].decode() == tenant
            assert fields[b"ingested_at"] == b"5000"
    assert [int(f[b"seq"]) for f in entries.values()] == [1, 2, 3, 4, 5]
    assert redis_client.hgetall(stream.keys.tenant_in_flight) == {b"acme": b"2", b"globex": b"3"}
    assert stream.backlog() == 5
