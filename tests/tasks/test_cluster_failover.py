"""The pipeline on a Redis Cluster whose master is killed while real workers screen: after the
failover, and the clients' retries of what was refused, every event is decided exactly once and
the ledger balances (docs/design.md, "Beyond one Redis")."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.crc import key_slot

from devtools.pipeline import wait_until
from devtools.redis_cluster import RedisCluster
from tests.factories import AUTH, Pipeline, mixed_events

pytestmark = pytest.mark.slow


def known(stack: Pipeline, body: dict[str, object], state: str | None = None) -> bool:
    """Whether a lookup finds the event (in `state`, when given)."""
    found = stack.client.get(f"/v1/events/discord/{body['event_id']}", headers=AUTH)
    return found.status_code == 200 and state in (None, found.get_json()["state"])


def test_a_master_killed_while_workers_decide_loses_no_kept_event_and_decides_none_twice(
    redis_url: str,
    rabbitmq_url: str,
    replicated_cluster: RedisCluster,
    pipeline_var: Path,
    tmp_path: Path,
) -> None:
    stack = Pipeline(
        redis_url,
        pipeline_var,
        tmp_path / "logs",
        redis_cluster_nodes=replicated_cluster.addresses,
        celery_broker_url=rabbitmq_url,
        ingest_shards=3,
    )
    try:
        stack.start_workers()
        sent = mixed_events(120, "failover")
        for start in range(0, 60, 20):
            stack.post(sent[start : start + 20])
        # Kill the master of shard 0 once workers are deciding, while events keep coming.
        wait_until(lambda: stack.ledger().high + stack.ledger().low > 0, 120, stack.logs())
        slot = key_slot(stack.layout.keys(0).ingest_stream.encode())
        victim = replicated_cluster.master_of_slot(slot)
        victim.kill()
        refused = []
        for start in range(60, 120, 20):
            response = stack.client.post(
                "/v1/events/batch", json={"events": sent[start : start + 20]}, headers=AUTH
            )
            if response.status_code != 200:  # 503 while the shard has no master
                refused += sent[start : start + 20]
        assert refused  # the front door felt the kill
        assert replicated_cluster.wait_failover(slot, victim).port != victim.port
        for start in range(0, len(refused), 20):  # the clients retry what was refused
            stack.post(refused[start : start + 20])

        # And what was answered 202 but lost with the master (asynchronous replication), if
        # anything: once retried, every event is queued exactly once.
        missing = [body for body in sent if not known(stack, body)]
        for start in range(0, len(missing), 20):
            stack.post(missing[start : start + 20])
        wait_until(
            lambda: stack.settled(len(sent)), 180, "decisions after failover\n" + stack.logs()
        )
        ledger = stack.ledger()
        assert ledger.balanced and ledger.accepted == len(sent)
        decided = stack.decided_stream_ids()
        assert len(decided) == len(set(decided)) == ledger.high + ledger.low == len(sent)
        assert all(known(stack, body, "screened") for body in sent)
    finally:
        stack.processes.stop_all()
