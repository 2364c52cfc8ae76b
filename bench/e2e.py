"""`make bench-e2e`: the whole running system under sustained load, next to the engine alone.

In one run on this machine: (1) the screening engine's own throughput (batches of 100, cold
embedding cache, nothing else running); (2) the maximum rate the running system sustains, from
first ingestion to last decision of a backlog of events sent over HTTP (web, Redis, beat, the
pipeline worker and one CPU worker all share the machine); (3) latency from ingestion to
decision (`screened_at - ingested_at` of each decision) at half that rate, and where that time
went (bench.timeline: in the stream, the broker, the worker's pool, screening, the decision's
write). With `--archive`
the stack also runs a PostgreSQL and the archiver, as `make run` does: compare its figures with a
run without to see what archiving costs the pipeline. With `--cluster` (`make bench-e2e
CLUSTER=1`) the same phases run again with the streams on a local 3-master Redis Cluster
(`REDIS_CLUSTER_NODES`, `INGEST_SHARDS` shards), reported next to the single-Redis run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis

from bench.ingest import cpu_seconds
from bench.report import save
from bench.timeline import TaskEvents, breakdown, decisions_with_entries
from core.archive import open_archive, totals_by_outcome
from core.archive.schema import migrate
from core.logs import configure_logging
from core.screening.engine import ScreenItem, load_engine
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.settings import Settings
from core.stream import ArchiveFeed, connect
from core.stream.connection import connect_streams
from core.stream.shards import ShardedScreening, ShardLayout
from devtools.pipeline import PipelineProcesses, wait_until
from devtools.postgres_server import PostgresServer
from devtools.redis_cluster import RedisCluster
from devtools.redis_server import RedisServer
from devtools.web_server import GunicornServer
from tasks import create_celery
from tasks.runtime import cap_search_threads

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
KEY = "bench-key"
IDLE_S = 5.0  # how long Redis's idle CPU is measured before the load


def texts_for(count: int, offset: int) -> list[str]:
    """Distinct tweet-length texts from the reference set (a different slice per phase)."""
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    pool = sorted({t for t in reference.texts if 20 <= len(t) <= 280})
    rng = np.random.default_rng(7)
    rng.shuffle(pool)
    return pool[offset : offset + count]


def as_events(texts: list[str], run: str) -> list[dict[str, Any]]:
    """Valid events carrying the texts."""
    stamp = datetime.now(UTC).isoformat()
    return [
        {"event_id": f"{run}-{i}", "platform": "discord", "event_type": "message",
         "user_id": f"u{i}", "content": text, "timestamp": stamp}
        for i, text in enumerate(texts)
    ]  # fmt: skip


def engine_rate(settings: Settings, client: redis.Redis, texts: list[str], batch: int) -> float:
    """Events/s of the engine alone on batches of `batch`, cold cache, with the search's
    threads as a screening worker sets them."""
    cap_search_threads(settings)
    engine = load_engine(settings, client)
    engine.screen([ScreenItem(text="warm-up")])
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        engine.screen([ScreenItem(text=t) for t in texts[start : start + batch]])
    return len(texts) / (time.perf_counter() - started)


def decided(stream: ShardedScreening) -> list[dict[str, Any]]:
    """Every decision on the high and low streams (of every shard)."""
    out = []
    for shard in stream.shards:
        for name in (shard.keys.high_stream, shard.keys.low_stream):
            entries: Any = shard.client.xrange(name)
            out += [orjson.loads(fields[b"decision"]) for _, fields in entries]
    return out


def latencies_ms(decisions: list[dict[str, Any]]) -> list[float]:
    """Ingestion-to-decision latency of each decision, in ms."""
    return [
        (
            datetime.fromisoformat(d["screened_at"]) - datetime.fromisoformat(d["ingested_at"])
        ).total_seconds()
        * 1000
        for d in decisions
    ]


def post(web: GunicornServer, events: list[dict[str, Any]]) -> None:
    """Submit events in batches of 500."""
    for start in range(0, len(events), 500):
        status, answer = web.request(
            "POST", "/v1/events/batch", {"events": events[start : start + 500]}
        )
        if status != 200:
            raise RuntimeError(f"ingestion refused: {status} {answer}")


def max_phase(
    web: GunicornServer,
    stream: ShardedScreening,
    events: list[dict[str, Any]],
    limit_s: float,
    redis_pids: dict[str, list[int]],
) -> dict[str, Any]:
    """Send a backlog at once; the sustained rate is events over first send to last decision.
    Also the CPU each group of Redis processes spent per event, ingestion to decision (the
    capacity model's figures: docs/benchmarks.md)."""
    # What Redis spends with nothing to do (cluster bus, cron, the beat's and workers' polls)
    # is a fixed cost per second, not per event: measured first and taken out, so the figure
    # per event is what more traffic adds.
    idle_from = {group: cpu_seconds(pids) for group, pids in redis_pids.items()}
    time.sleep(IDLE_S)
    redis_before = {group: cpu_seconds(pids) for group, pids in redis_pids.items()}
    idle = {group: (redis_before[group] - idle_from[group]) / IDLE_S for group in redis_pids}
    started = time.time()
    post(web, events)
    ingest_s = time.time() - started
    wait_until(lambda: stream.ledger().in_flight == 0, limit_s, "the backlog to drain")
    done = [d for d in decided(stream) if d["event_id"].startswith("max-")]
    last = max(datetime.fromisoformat(d["screened_at"]).timestamp() for d in done)
    elapsed = time.time() - started
    redis_cpu = {
        group: cpu_seconds(pids) - redis_before[group] for group, pids in redis_pids.items()
    }
    return {
        "events": len(done),
        "ingest_seconds": round(ingest_s, 2),
        "events_per_s": len(done) / (last - started),
        "redis_idle_cores": {group: round(cores, 4) for group, cores in idle.items()},
        "redis_cpu_us_per_event": {
            group: round((seconds - idle[group] * elapsed) / max(len(done), 1) * 1e6, 1)
            for group, seconds in redis_cpu.items()
        },
    }


def paced_phase(
    web: GunicornServer, stream: ShardedScreening, events: list[dict[str, Any]], rate: float
) -> dict[str, Any]:
    """Offer events at `rate` per second in small batches; latency of each decision."""
    chunk = max(10, int(rate / 100))  # about 100 requests a second, whatever the rate
    started = time.monotonic()
    for i in range(0, len(events), chunk):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        post(web, events[i : i + chunk])
    offered = len(events) / (time.monotonic() - started)
    wait_until(lambda: stream.ledger().in_flight == 0, 300, "the paced phase to finish")
    latencies = latencies_ms([d for d in decided(stream) if d["event_id"].startswith("half-")])
    return {
        "offered_events_per_s": round(offered, 1),
        "events": len(latencies),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
        "max_ms": round(float(np.max(latencies)), 1),
    }


def start_archive(work: Path, env: dict[str, str]) -> PostgresServer:
    """A migrated PostgreSQL for the stack's archive (its URL goes into `env`)."""
    database = PostgresServer(work / "postgres")
    database.start()
    migrate(database.url)
    env["DATABASE_URL"] = database.url
    return database


def archived_totals(database: PostgresServer, feeds: list[ArchiveFeed]) -> dict[str, int]:
    """The archive's outcomes once the archiver has caught up on every shard's feed."""
    wait_until(lambda: all(feed.lag_seconds() == 0 for feed in feeds), 300, "the archive")
    engine = open_archive(database.url)
    try:
        return totals_by_outcome(engine)
    finally:
        engine.dispose()


def parse_options() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load phases")
    parser.add_argument(
        "--gpu", type=int, help="screen on this GPU (a --gpu worker) instead of the CPU"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="events per screening task")
    parser.add_argument(
        "--archive", action="store_true", help="run PostgreSQL and the archiver as well"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="run again with the streams on a Redis Cluster"
    )
    parser.add_argument("--shards", type=int, default=8, help="with --cluster: INGEST_SHARDS")
    return parser.parse_args()


def main() -> None:
    """Measure and report."""
    options = parse_options()
    configure_logging("WARNING")
    work = OUT / "e2e"
    shutil.rmtree(work, ignore_errors=True)
    device = "cpu" if options.gpu is None else "cuda"
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "device": device,
        "batch_size": options.batch_size,
        "archive": options.archive,
    }
    report.update(run_stack(options, work, device, rate=None, shards=0))
    if options.cluster:
        on_cluster = run_stack(
            options, work / "cluster", device, report["engine_events_per_s"], options.shards
        )
        on_cluster["masters"], on_cluster["shards"] = 3, options.shards
        on_cluster["cluster_over_single"] = round(
            on_cluster["pipeline_max_events_per_s"] / report["pipeline_max_events_per_s"], 3
        )
        report["cluster"] = on_cluster
    save("e2e-archive" if options.archive else "e2e", report, OUT)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.stdout.write("targets: pipeline_over_engine >= 0.9, p50 <= 100 ms, p99 <= 500 ms\n")


def load_phases(
    web: GunicornServer,
    stream: ShardedScreening,
    rate: float,
    seconds: float,
    *,
    redis_pids: dict[str, list[int]],
    broker: str,
) -> dict[str, Any]:
    """The sustained maximum from a backlog of `rate` x `seconds` events, then latency at half
    that rate, with where it went (bench.timeline: task events from the Celery `broker`)."""
    backlog = int(rate * seconds)
    events = as_events(texts_for(backlog, 2000), "max")
    flat = max_phase(web, stream, events, seconds * 10, redis_pids)
    sustained = flat.pop("events_per_s")
    paced = as_events(texts_for(int(sustained / 2 * seconds), 2000 + backlog), "half")
    tasks = TaskEvents(create_celery(Settings(redis_url=broker), include_tasks=False))
    tasks.start()
    try:
        half = paced_phase(web, stream, paced, sustained / 2)
    finally:
        tasks.stop()
    half["timeline"] = breakdown(tasks, decisions_with_entries(stream, "half-"))
    return {
        "pipeline_max_events_per_s": round(sustained, 1),
        "pipeline_over_engine": round(sustained / rate, 3),
        "max_phase": flat,
        "half_rate": half,
    }


def run_stack(
    options: argparse.Namespace, work: Path, device: str, rate: float | None, shards: int
) -> dict[str, Any]:
    """The stack's phases on one Redis (`shards` 0) or with the streams on a 3-master cluster;
    the engine alone is measured first unless its `rate` is given."""
    store = RedisServer(work / "redis", appendonly=True, appendfsync="everysec")
    store.start()
    client = connect(store.url, 5.0)
    env = {
        "REDIS_URL": store.url,
        "API_KEYS": KEY,
        "LOG_LEVEL": "WARNING",
        "BACKLOG_MAX": "10000000",
        "BATCH_SIZE": str(options.batch_size),
        "GPU_QUEUES": "0" if options.gpu is None else str(options.gpu + 1),
        "EMBED_DEVICE": device,
    }
    cluster = RedisCluster(work / "cluster", masters=3) if shards else None
    if cluster is not None:
        cluster.start()
        env["REDIS_CLUSTER_NODES"], env["INGEST_SHARDS"] = cluster.addresses, str(shards)
    report: dict[str, Any] = {}
    database = start_archive(work, env) if options.archive else None
    processes = PipelineProcesses(env, work / "logs")
    web = GunicornServer(store.url, work / "web", **env)
    nodes = cluster.addresses.split(",") if cluster is not None else []
    settings = Settings(
        redis_url=store.url,
        embed_device=device,
        redis_cluster_nodes=nodes,
        ingest_shards=shards or 1,
    )
    streams = connect_streams(settings, 5.0)
    layout = ShardLayout.from_settings(settings)
    try:
        if rate is None:
            rate = engine_rate(
                settings, client, texts_for(options.batch_size * 10, 0), options.batch_size
            )
            report["engine_events_per_s"] = round(rate, 1)
        web.start()
        processes.start_beat()
        processes.start_worker("pipeline", ["--pipeline"])
        role = ["--cpu"] if options.gpu is None else ["--gpu", str(options.gpu)]
        processes.start_worker("screening", role)
        stream = ShardedScreening(streams, layout, settings)
        post(web, as_events(texts_for(20, 1000), "warm"))
        wait_until(lambda: stream.ledger().high + stream.ledger().low == 20, 300, "warm-up")
        # The Redis of REDIS_URL (broker, caches, heartbeats; the streams too without a
        # cluster) apart from the cluster's masters, which hold only the streams.
        assert store.process is not None
        pids = {"redis_url": [store.process.pid]}
        if cluster is not None:
            pids["cluster"] = [n.process.pid for n in cluster.nodes if n.process is not None]
        report.update(
            load_phases(web, stream, rate, options.seconds, redis_pids=pids, broker=store.url)
        )
        ledger = stream.ledger()
        if database is not None:
            feeds = [ArchiveFeed(streams, keys) for keys in layout.all_keys()]
            report["archived"] = archived_totals(database, feeds)
        report["ledger"] = {
            "accepted": ledger.accepted,
            "decided": ledger.high + ledger.low,
            "dead_lettered": ledger.dead_lettered,
            "balanced": ledger.balanced,
        }
    finally:
        processes.stop_all()
        web.stop()
        client.close()
        streams.close()
        store.stop()
        if cluster is not None:
            cluster.stop()
        if database is not None:
            database.stop()
    return report


if __name__ == "__main__":
    main()
