"""A Redis Cluster master killed under load (3 masters, each with a replica): what Redis'
asynchronous replication can lose, how the ledger reports it, and that nothing is decided
twice once the clients retry (docs/design.md, "Beyond one Redis")."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from core.errors import StoreUnavailable
from core.keys import Keys
from core.models import Event, Platform
from core.settings import Settings
from core.stream.connection import connect_cluster
from core.stream.shards import ShardedEventStream, ShardedLedger, ShardedScreening, ShardLayout
from devtools.redis_cluster import RedisCluster
from tests.factories import decision_for, make_event

pytestmark = pytest.mark.slow

BATCHES, BATCH, KILL_AT = 240, 10, 80


def test_a_killed_master_fails_over_and_the_ledger_counts_exactly_what_survived(
    replicated_cluster: RedisCluster,
) -> None:
    layout = ShardLayout(Keys(), 8, clustered=True)
    client = connect_cluster(replicated_cluster.addresses.split(","), 2.0)
    front = ShardedEventStream(client, layout)
    sent: list[Event] = []
    answered: dict[str, str] = {}  # event id -> the stream id of its 202
    refused = 0
    slot = key_slot(layout.keys(0).ingest_stream.encode())
    victim = replicated_cluster.master_of_slot(slot)
    for i in range(BATCHES):
        if i == KILL_AT:
            victim.kill()  # SIGKILL: whatever its replica had not received is gone
        batch = [make_event() for _ in range(BATCH)]
        sent += batch
        try:
            results = front.ingest(batch, tenant="default")
        except StoreUnavailable:  # the front door answers 503; the client retries later
            refused += 1
            if refused == 1:  # the load resumes once the replica has taken over
                assert replicated_cluster.wait_failover(slot, victim).port != victim.port
            continue
        answered.update((e.event_id, r.stream_id) for e, r in zip(batch, results, strict=True))
    assert refused > 0  # the kill hit the load
    assert len(answered) > (BATCHES - KILL_AT) * BATCH  # and the promoted replica took writes

    # Exactly what survived is counted: the entry, its dedup record and its count move in one
    # script, replicated as one unit, so a lost write takes its count with it.
    def known(event: Event) -> bool:
        return front.lookup("default", Platform(event.platform), event.event_id) is not None

    present = {event.event_id for event in sent if known(event)}
    lost = [e for e in sent if e.event_id in answered and e.event_id not in present]
    ledger = ShardedLedger(client, layout).ledger()
    assert ledger.balanced
    assert ledger.accepted == len(present)
    assert len(present) >= len(answered) - len(lost)

    # The clients retry what they did not see stored: the survivors are duplicates of their
    # first acceptance, the rest are accepted now; every event is then queued exactly once.
    for start in range(0, len(sent), 100):
        chunk = sent[start : start + 100]
        for event, result in zip(chunk, front.ingest(chunk, tenant="default"), strict=True):
            if event.event_id in present:
                assert result.status == "duplicate"
                if event.event_id in answered:
                    assert result.stream_id == answered[event.event_id]
            else:
                assert result.status == "accepted"
    assert ShardedLedger(client, layout).ledger().accepted == len(sent)

    screening = ShardedScreening(client, layout, Settings())
    decided: list[str] = []
    for shard, stream in enumerate(screening.shards):
        stream.ensure_group()
        while entries := stream.read("c1", 500):
            finished = stream.decide(entries, [decision_for(e) for e in entries])
            decided += [
                f"{shard}/{e.stream_id}" for e, done in zip(entries, finished, strict=True) if done
            ]
    ledger = screening.ledger()
    assert ledger.balanced and ledger.in_flight == 0
    assert len(decided) == len(set(decided)) == ledger.low == len(sent)
