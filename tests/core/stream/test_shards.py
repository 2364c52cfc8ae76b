"""The stream layer sharded on a real 3-master Redis Cluster: layout, front door, consumer side,
dead letters, ledger and backlog summed over shards."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from core.admission import RateLimiter
from core.keys import Keys, shard_tag
from core.models import Platform
from core.settings import Settings
from core.stream import ArchiveFeed, IngestRequest, Label, LabelStream
from core.stream.connection import connect_cluster
from core.stream.shards import (
    ShardedEventStream,
    ShardedLedger,
    ShardedScreening,
    ShardLayout,
    read_sharded_status,
    replay_all,
)
from devtools.redis_cluster import RedisCluster
from tests.factories import decision_for, make_event

SHARDS = 8


@pytest.fixture()
def cluster(cluster_nodes: str) -> ClusterClient:
    """A client of the session's emptied cluster."""
    return connect_cluster(cluster_nodes.split(","), 5.0)


@pytest.fixture()
def layout() -> ShardLayout:
    """Eight shards of the default names."""
    return ShardLayout(Keys(), SHARDS, clustered=True)


def _screening(cluster: ClusterClient, layout: ShardLayout, **env: str) -> ShardedScreening:
    """The consumer side of every shard, with each group created."""
    screening = ShardedScreening(cluster, layout, Settings(**env))  # type: ignore[arg-type]
    for stream in screening.shards:
        stream.ensure_group()
    return screening


def test_every_name_of_a_shard_shares_its_hash_slot(layout: ShardLayout) -> None:
    keys = layout.keys(3)
    names = [
        keys.ingest_stream,
        keys.high_stream,
        keys.low_stream,
        keys.dlq_stream,
        keys.counter("accepted"),
        keys.ingest_sequence,
        keys.tenant_in_flight,
        keys.dedup("t", "discord", "e1"),
        keys.decision("t", "discord", "e1"),
        keys.failure("1-0"),
        keys.user_posts("t", "discord", "u1"),
        keys.user_high_risk("t", "discord", "u1"),
    ]
    assert keys.ingest_stream == "{" + shard_tag(3, SHARDS) + "}:events:ingest"
    assert len({key_slot(name.encode()) for name in names}) == 1


def test_eight_shards_spread_three_three_two_over_three_masters(
    redis_cluster: RedisCluster, layout: ShardLayout
) -> None:
    masters = Counter(
        redis_cluster.master_of_slot(key_slot(keys.ingest_stream.encode())).port
        for keys in layout.all_keys()
    )
    assert sorted(masters.values()) == [2, 3, 3]


def test_events_land_in_their_shards_and_dedup_is_exact_across_them(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    stream = ShardedEventStream(cluster, layout)
    events = [make_event() for _ in range(200)]
    first = stream.ingest(events, "rid", "tp", tenant="default")
    assert [r.status for r in first] == ["accepted"] * 200
    changed = events[7].model_copy(update={"content": "changed"})
    again = stream.ingest([*events, changed], tenant="default")
    assert [r.status for r in again] == ["duplicate"] * 200 + ["conflict"]
    assert [r.stream_id for r in again[:200]] == [r.stream_id for r in first]
    lengths = [cluster.xlen(keys.ingest_stream) for keys in layout.all_keys()]
    assert sum(lengths) == 200
    assert all(length > 0 for length in lengths)  # 200 identities reach all eight shards
    for event, result in zip(events, first, strict=True):
        keys = layout.keys(layout.shard_of("default", event.platform, event.event_id))
        assert cluster.xrange(keys.ingest_stream, result.stream_id, result.stream_id)
    ledger = ShardedLedger(cluster, layout).ledger()
    assert (ledger.accepted, ledger.in_flight) == (200, 200)
    assert ledger.balanced


def test_requests_combined_over_shards_get_their_own_results_in_order(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    stream = ShardedEventStream(cluster, layout)
    mine, theirs = [make_event() for _ in range(40)], [make_event() for _ in range(30)]
    first, second = stream.ingest_many(
        [IngestRequest(mine, "acme", "rid-a"), IngestRequest([*theirs, mine[3]], "acme", "rid-b")]
    )
    assert [r.status for r in first] == ["accepted"] * 40
    assert [r.status for r in second] == ["accepted"] * 30 + ["duplicate"]
    assert second[-1].stream_id == first[3].stream_id
    for events, results, request_id in ((mine, first, b"rid-a"), (theirs, second, b"rid-b")):
        for event, result in zip(events, results, strict=False):
            keys = layout.keys(layout.shard_of("acme", event.platform, event.event_id))
            [(_, fields)] = cluster.xrange(keys.ingest_stream, result.stream_id, result.stream_id)
            assert fields[b"request_id"] == request_id
            assert orjson.loads(fields[b"event"])["event_id"] == event.event_id


def test_lookups_find_each_event_in_its_shard_queued_then_decided(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    front = ShardedEventStream(cluster, layout)
    events = [make_event() for _ in range(30)]
    front.ingest(events, tenant="default")
    state = front.lookup("default", Platform.DISCORD, events[0].event_id)
    assert state is not None and state.state == "queued"
    assert front.lookup("default", Platform.DISCORD, "never-sent") is None
    screening = _screening(cluster, layout)
    for stream in screening.shards:
        entries = stream.read("c1", 100)
        stream.decide(entries, [decision_for(e) for e in entries])
    decided = [front.lookup("default", Platform.DISCORD, e.event_id) for e in events]
    assert all(s is not None and s.state == "screened" for s in decided)


def test_each_shard_decides_once_and_the_summed_ledger_is_exact(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    ShardedEventStream(cluster, layout).ingest([make_event() for _ in range(120)], tenant="default")
    screening = _screening(cluster, layout)
    decided = 0
    for index in screening.turn():
        stream = screening.shard(index)
        entries = stream.read("c1", 100)
        decisions = [
            decision_for(e, "high" if i % 3 == 0 else "low") for i, e in enumerate(entries)
        ]
        assert stream.decide(entries, decisions) == [True] * len(entries)
        assert stream.decide(entries, decisions) == [False] * len(entries)
        decided += len(entries)
    assert decided == 120
    ledger = screening.ledger()
    assert ledger.balanced
    assert (ledger.accepted, ledger.high + ledger.low, ledger.in_flight) == (120, 120, 0)
    status = read_sharded_status(cluster, layout)
    assert (status.unprocessed, status.high + status.low) == (0, 120)


def test_dead_letters_go_back_to_their_own_shard_once(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    ShardedEventStream(cluster, layout).ingest([make_event() for _ in range(40)], tenant="default")
    screening = _screening(cluster, layout, max_deliveries="1")
    for stream in screening.shards:
        stream.read("c1", 100)
    dead = sum(stream.reclaim("c2", 0).dead_lettered for stream in screening.shards)
    assert dead == 40
    ledger = screening.ledger()
    assert (ledger.dead_lettered, ledger.in_flight, ledger.balanced) == (40, 0, True)
    by_shard = [cluster.xlen(keys.dlq_stream) for keys in layout.all_keys()]
    assert replay_all(cluster, layout).count == 40
    assert replay_all(cluster, layout).count == 0
    assert [cluster.xlen(keys.ingest_stream) for keys in layout.all_keys()] == [
        2 * n for n in by_shard
    ]
    ledger = screening.ledger()
    assert (ledger.dead_lettered, ledger.in_flight, ledger.replayed) == (0, 40, 40)
    assert ledger.balanced


def test_a_sender_history_sums_the_shards_its_events_were_decided_in(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    events = [make_event(user_id="busy") for _ in range(24)]
    ShardedEventStream(cluster, layout).ingest(events, tenant="default")
    screening = _screening(cluster, layout)
    for stream in screening.shards:
        entries = stream.read("c1", 100)
        stream.decide(entries, [decision_for(e, "high") for e in entries])
    assert screening.user_history([("default", "discord", "busy")]) == [(24, 24)]


def test_the_fullest_shard_sets_the_backlog_the_front_door_admits_against(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    front = ShardedEventStream(cluster, layout)
    events = [make_event() for _ in range(64)]
    front.ingest(events, tenant="default")
    per_shard = Counter(layout.shard_of("default", e.platform, e.event_id) for e in events)
    backlog = front.backlog_by_tenant()
    assert backlog.total == max(64, SHARDS * max(per_shard.values()))
    assert backlog.of("default") == 64
    assert front.backlog() == 64


def test_scripts_run_after_every_master_forgot_them(
    cluster: ClusterClient, redis_cluster: RedisCluster, layout: ShardLayout
) -> None:
    front = ShardedEventStream(cluster, layout)
    front.ingest([make_event()], tenant="default")
    for node in redis_cluster.live_nodes():
        direct = redis.Redis(port=node.port)
        direct.script_flush()
        direct.close()
    assert [
        r.status for r in front.ingest([make_event() for _ in range(20)], tenant="default")
    ] == ["accepted"] * 20
    assert ShardedLedger(cluster, layout).ledger().accepted == 21


def test_archive_feed_labels_and_rate_limits_work_on_the_cluster(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    ShardedEventStream(cluster, layout).ingest([make_event() for _ in range(16)], tenant="default")
    screening = _screening(cluster, layout)
    archived = 0
    for index, stream in enumerate(screening.shards):
        entries = stream.read("c1", 100)
        stream.decide(entries, [decision_for(e) for e in entries])
        feed = ArchiveFeed(cluster, layout.keys(index))
        feed.ensure_groups()
        delivered = feed.read("archiver", 100)
        feed.ack(delivered)
        archived += len(delivered)
    assert archived == 16
    labels = LabelStream(cluster, Keys())
    labels.publish(Label(tenant="default", example_id="ex-1", label="harmful", text="a text"))
    found, _ = labels.after("0")
    assert [label.label for label in found] == ["harmful"]
    limiter = RateLimiter(cluster, rate_per_s=1.0, burst=2)
    assert [limiter.take("default", now_ms=1_000).allowed for _ in range(3)] == [True, True, False]


def test_a_script_sent_where_the_slot_no_longer_lives_follows_the_redirect(
    cluster: ClusterClient, layout: ShardLayout
) -> None:
    front = ShardedEventStream(cluster, layout)
    shard = layout.keys(0)
    event = make_event()
    while layout.shard_of("default", event.platform, event.event_id) != 0:
        event = make_event()
    front.ingest([make_event() for _ in range(20)], tenant="default")  # connections are warm
    slot = key_slot(shard.ingest_stream.encode())
    right = cluster.get_node_from_key(shard.ingest_stream)
    wrong = next(n for n in cluster.get_primaries() if n.name != right.name)
    cluster.nodes_manager.slots_cache[slot] = [wrong]  # a slot map from before a reshard
    [result] = front.ingest([event], tenant="default")  # Redis answers MOVED on the wrong one
    assert result.status == "accepted"
    assert cluster.get_node_from_key(shard.ingest_stream).name == right.name
    assert ShardedLedger(cluster, layout).ledger().accepted == 21
