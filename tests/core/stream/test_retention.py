"""Stream retention on a real Redis: the decision streams stay bounded, and no trim ever takes an
entry a consumer group has not read or acknowledged."""

from __future__ import annotations

import redis

from core.stream import ArchiveFeed, ScreeningStream
from core.stream.retention import Retention, StreamTrimmer

STREAM = "events:risk:high"


def add(client: redis.Redis, count: int, stream: str = STREAM) -> list[str]:
    """Append `count` entries; their ids, oldest first."""
    return [client.xadd(stream, {"n": str(i)}).decode() for i in range(count)]


def ids(client: redis.Redis, stream: str = STREAM) -> list[str]:
    """The ids a stream holds now, oldest first."""
    return [entry_id.decode() for entry_id, _ in client.xrange(stream)]


def test_a_decision_stream_without_groups_keeps_its_newest_entries(
    redis_client: redis.Redis,
) -> None:
    added = add(redis_client, 10)
    assert StreamTrimmer(redis_client).trim(Retention(STREAM, keep_newest=3)) == 7
    assert ids(redis_client) == added[-3:]
    assert StreamTrimmer(redis_client).trim(Retention(STREAM, keep_newest=3)) == 0


def test_a_trim_stops_at_the_oldest_entry_a_group_holds_pending(redis_client: redis.Redis) -> None:
    added = add(redis_client, 10)
    redis_client.xgroup_create(STREAM, "archive", id="0")
    read = redis_client.xreadgroup("archive", "a", {STREAM: ">"}, count=4)
    redis_client.xack(STREAM, "archive", *[entry_id for entry_id, _ in read[0][1][:2]])
    assert StreamTrimmer(redis_client).trim(Retention(STREAM, keep_newest=3)) == 2
    assert ids(redis_client) == added[2:]  # the 2 pending and the 6 never delivered stay


def test_the_slowest_of_several_groups_decides_what_stays(redis_client: redis.Redis) -> None:
    added = add(redis_client, 8)
    for group, count in (("archive", 6), ("moderators", 3)):
        redis_client.xgroup_create(STREAM, group, id="0")
        read = redis_client.xreadgroup(group, "c", {STREAM: ">"}, count=count)
        redis_client.xack(STREAM, group, *[entry_id for entry_id, _ in read[0][1]])
    assert StreamTrimmer(redis_client).trim(Retention(STREAM, keep_newest=1)) == 3
    assert ids(redis_client) == added[3:]  # the moderators have not read these yet


def test_a_stream_whose_required_group_is_missing_is_not_trimmed(
    redis_client: redis.Redis,
) -> None:
    add(redis_client, 5, "events:ingest")
    rule = Retention("events:ingest", required_group="screening")
    assert StreamTrimmer(redis_client).trim(rule, older_than_ms=2**42) == 0
    assert redis_client.xlen("events:ingest") == 5


def test_the_pipelines_decision_streams_are_trimmed_behind_the_archiver(
    redis_client: redis.Redis,
) -> None:
    stream = ScreeningStream(redis_client)
    feed = ArchiveFeed(redis_client)
    feed.ensure_groups()
    keys = stream.keys
    added = {name: add(redis_client, 6, name) for name in (keys.high_stream, keys.low_stream)}
    delivered = feed.read("archiver", 4)
    feed.ack(delivered)  # 4 of each stream archived, 2 of each not yet read
    assert stream.trim_decisions(maxlen=1) == {keys.high_stream: 4, keys.low_stream: 4}
    for name, entries in added.items():
        assert ids(redis_client, name) == entries[4:]
