"""A test pipeline: real beat and worker processes with one environment, a web app on the same
Redis (and Redis Cluster, for the cluster flavour), direct views of the streams, and the check
that every event was decided once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from flask import Flask

from core.stream import ArchiveFeed, Ledger, ScreeningStream
from core.stream.connection import Client, connect_streams
from core.stream.shards import ShardedScreening, ShardLayout
from devtools.pipeline import PipelineProcesses
from devtools.stack import settings_from
from devtools.web_server import GunicornServer
from tests.factories.web import API_KEY, AUTH
from webapp import create_app

POISON = "<<poison-pill>>"
SLOW = "<<slow-batch>>"


def pipeline_env(redis_url: str, var: Path, **overrides: Any) -> dict[str, str]:
    """Environment of every process of a test pipeline: fast ticks, small batches, chaos hooks."""
    env = {
        "REDIS_URL": redis_url,
        "API_KEYS": API_KEY,
        "VAR_DIR": str(var),
        "MODEL_DIR": str(var / "models"),
        "REFERENCE_PATH": str(var / "reference.csv"),
        "EMBED_DEVICE": "cpu",
        "EMBED_THREADS": "1",
        "BATCH_SIZE": "20",
        "DRAIN_INTERVAL_S": "1",
        "RECLAIM_INTERVAL_S": "1",
        "RECLAIM_IDLE_S": "4",
        "WORKER_HEARTBEAT_S": "1",
        "MAX_DELIVERIES": "3",
        "CHAOS_POISON_MARKER": POISON,
        "CHAOS_SLOW_MARKER": SLOW,
        "CHAOS_SLOW_S": "6",
        "LOG_LEVEL": "INFO",
    }
    env.update({key.upper(): str(value) for key, value in overrides.items()})
    return env


class Pipeline:
    """A test pipeline: its processes, a web app and direct views of Redis."""

    def __init__(self, redis_url: str, var: Path, log_dir: Path, **overrides: Any) -> None:
        self.env = pipeline_env(redis_url, var, **overrides)
        self.settings = settings_from(self.env)
        self.processes = PipelineProcesses(self.env, log_dir)
        self.redis = redis.Redis.from_url(redis_url)
        # What holds the streams: that Redis, or the Redis Cluster of REDIS_CLUSTER_NODES.
        clustered = bool(self.settings.redis_cluster_nodes)
        self.streams: Client = connect_streams(self.settings, 5.0) if clustered else self.redis
        self.layout = ShardLayout.from_settings(self.settings)
        self.screening = ShardedScreening(self.streams, self.layout, self.settings)
        self.stream: ScreeningStream = self.screening.shard(0)
        self.app: Flask = create_app(self.settings)
        self.client = self.app.test_client()

    def start_workers(self, *screening: tuple[str, list[str]]) -> None:
        """Start beat, the pipeline worker and screening workers (default: one CPU worker)."""
        self.processes.start_beat()
        self.processes.start_worker("pipeline", ["--pipeline"])
        for name, role in screening or (("cpu", ["--cpu"]),):
            self.processes.start_worker(name, role)

    def post(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit events as a batch over the app; return the per-item results."""
        response = self.client.post("/v1/events/batch", json={"events": events}, headers=AUTH)
        assert response.status_code == 200, response.get_data(as_text=True)
        results: list[dict[str, Any]] = response.get_json()["results"]
        return results

    def ledger(self) -> Ledger:
        """The outcome ledger now (summed over the shards)."""
        return self.screening.ledger()

    def decided_stream_ids(self) -> list[str]:
        """Ingest-stream ids of every decision on the high and low streams (on a cluster,
        "shard/id": each shard numbers its entries on its own)."""
        ids = []
        for shard, keys in enumerate(self.layout.all_keys()):
            tag = f"{shard}/" if self.layout.clustered else ""
            for name in (keys.high_stream, keys.low_stream):
                ids += [tag + f[b"stream_id"].decode() for _, f in self.streams.xrange(name)]
        return ids

    def outcome_entries(self, outcome: str) -> list[dict[bytes, bytes]]:
        """The fields of every entry of the high, low or dead-letter stream, over the shards."""
        found = []
        for keys in self.layout.all_keys():
            name = {"high": keys.high_stream, "low": keys.low_stream, "dlq": keys.dlq_stream}
            found += [fields for _, fields in self.streams.xrange(name[outcome])]
        return found

    def archive_lag(self) -> float:
        """Seconds the oldest decision not yet archived has waited, over the shards."""
        return max(ArchiveFeed(self.streams, keys).lag_seconds() for keys in self.layout.all_keys())

    def longest_decision_stream(self) -> int:
        """Entries of the longest high or low stream (of any shard)."""
        return max(
            self.streams.xlen(name)
            for keys in self.layout.all_keys()
            for name in (keys.high_stream, keys.low_stream)
        )

    def claimed_by_a_worker(self) -> bool:
        """Whether a screening worker (consumer "host:pid", not the batcher) holds entries."""
        for keys in self.layout.all_keys():
            try:
                consumers = self.streams.xinfo_consumers(keys.ingest_stream, keys.group)
            except redis.ResponseError:  # the batcher has not created the group yet
                continue
            if any(b":" in c["name"] and c["pending"] for c in consumers):
                return True
        return False

    def settled(self, accepted: int) -> bool:
        """Whether all `accepted` events are decided or dead-lettered."""
        ledger = self.ledger()
        return ledger.accepted == accepted and ledger.in_flight == 0

    def logs(self) -> str:
        """Every process's log, for failure messages."""
        return "\n".join(
            f"--- {name}\n{self.processes.log(name)[-3000:]}" for name in self.processes.processes
        )


def assert_each_decided_once(pipeline: Pipeline, accepted: int, dead: int = 0) -> None:
    """Every accepted event has exactly one outcome, and the ledger balances."""
    ledger = pipeline.ledger()
    assert ledger.balanced, ledger
    assert ledger.accepted == accepted
    assert ledger.dead_lettered == dead
    decided = pipeline.decided_stream_ids()
    assert len(decided) == len(set(decided)) == accepted - dead == ledger.high + ledger.low
    assert ledger.in_flight == 0


@dataclass
class ConsoleStack:
    """A whole system for the console's browser tests: gunicorn and a pipeline (beat, the
    pipeline worker, a screening worker) on one Redis and PostgreSQL, with two tenants' keys."""

    pipeline: Pipeline
    web: GunicornServer
