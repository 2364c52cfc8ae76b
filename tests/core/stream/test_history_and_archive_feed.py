"""The decide step counts each decision in its user's history, and the archive feed on Redis."""

from __future__ import annotations

import time

import redis

from core.stream import ArchiveFeed, Entry, EventStream, LabelStream, ScreeningStream
from core.stream.labels import Label
from tests.factories import decision_for, make_event


def _queue(client: redis.Redis, count: int, user: str, tenant: str = "default") -> list[Entry]:
    """Queue events of one user and read them through the group, as the batcher does."""
    stream = EventStream(client)
    events = [make_event(user_id=user) for _ in range(count)]
    stream.ingest(events, tenant=tenant)
    consumer = ScreeningStream(client)
    consumer.ensure_group()
    return consumer.read("test", count)


def test_each_decision_counts_once_in_its_users_history(redis_client: redis.Redis) -> None:
    entries = _queue(redis_client, 4, "spammer")
    consumer = ScreeningStream(redis_client)
    routes = ["high", "low", "high", "low"]
    user = ("default", "discord", "spammer")
    decisions = [decision_for(e, r) for e, r in zip(entries, routes, strict=True)]
    assert consumer.decide(entries, decisions) == [True] * 4
    assert consumer.decide(entries, decisions) == [False] * 4  # a redelivery counts nothing
    assert consumer.user_history([user, ("default", "discord", "nobody")]) == [(2, 4), (0, 0)]
    later = int(time.time() * 1000) + 61_000  # a minute on, the burst window is empty
    assert consumer.user_history([user], now_ms=later) == [(2, 0)]


def test_a_users_history_is_kept_per_tenant(redis_client: redis.Redis) -> None:
    consumer = ScreeningStream(redis_client)
    acme = _queue(redis_client, 3, "same-name", tenant="acme")
    consumer.decide(acme, [decision_for(e, "high") for e in acme])
    globex = _queue(redis_client, 1, "same-name", tenant="globex")
    consumer.decide(globex, [decision_for(e, "low") for e in globex])
    assert consumer.user_history(
        [("acme", "discord", "same-name"), ("globex", "discord", "same-name")]
    ) == [(3, 3), (0, 1)]
    assert consumer.ledger().balanced


def test_the_archive_lag_is_the_age_of_the_oldest_unacknowledged_decision(
    redis_client: redis.Redis,
) -> None:
    feed = ArchiveFeed(redis_client)
    feed.ensure_groups()
    assert feed.lag_seconds() == 0.0
    entries = _queue(redis_client, 3, "u")
    ScreeningStream(redis_client).decide(entries, [decision_for(e) for e in entries])
    first = int(feed.client.xrange("events:risk:low", count=1)[0][0].split(b"-")[0])
    assert feed.lag_seconds(now=first / 1000 + 10) == 10.0  # undelivered
    delivered = feed.read("archiver", 2)
    assert [d.outcome for d in delivered] == ["low", "low"]
    assert feed.lag_seconds(now=first / 1000 + 10) == 10.0  # delivered, not acknowledged
    assert [d.entry_id for d in feed.read("archiver", 10, pending=True)] == [
        d.entry_id for d in delivered
    ]
    feed.ack(delivered)
    assert feed.lag_seconds(now=first / 1000 + 10) > 0  # the third is still unread
    feed.ack(feed.read("archiver", 10))
    assert feed.lag_seconds() == 0.0


def test_labels_are_read_on_from_a_position(redis_client: redis.Redis) -> None:
    labels = LabelStream(redis_client)
    assert labels.last_id() == "0-0"
    labels.publish(Label("default", "review:a", "SPAM", "buy now"))
    position = labels.last_id()
    labels.publish(Label("default", "review:b", "TOXIC", "you idiot"))
    found, after = labels.after(position)
    assert [label.example_id for label in found] == ["review:b"]
    assert labels.after(after) == ([], after)
