"""`make bench-ingest`: the front door against its ceilings, side by side in one run.

(a) a bare gevent Flask endpoint that parses the same JSON and answers 202 (the HTTP ceiling),
(b) POST /v1/events, (c) POST /v1/events/batch with 500 events, (d) redis-py pipelined XADD of
the same payload (the Redis ceiling). Each HTTP case is run flat out, then at half its maximum
rate for latency. All processes share this machine's cores, so every rate is reported with the
CPU each party used.

With `--cluster` (`make bench-ingest CLUSTER=1`) the run adds (b) and (c) again with the streams
on a local 3-master Redis Cluster (`REDIS_CLUSTER_NODES`, `INGEST_SHARDS` shards), each against
the single-Redis figure of the same run, with the CPU of every master summed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.loadgen import SAMPLE_TEXTS, LoadResult, run_wrk
from bench.report import save
from core.stream import connect
from devtools.redis_cluster import RedisCluster
from devtools.redis_server import RedisServer
from devtools.web_server import GunicornServer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def gunicorn(redis_url: str, app: str, work: Path, **env: str) -> Iterator[GunicornServer]:
    """A gunicorn server with the project's settings, logging to a file, for one case."""
    work.mkdir(parents=True, exist_ok=True)
    server = GunicornServer(
        redis_url, work, app=app, API_KEYS="bench-key", BACKLOG_MAX="1000000000", **env
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def measure_http(
    server: GunicornServer, redis_pids: list[int], path: str, seconds: float, batch: int = 0
) -> dict[str, Any]:
    """Run one HTTP case flat out, then paced at half that rate; return both with CPU shares."""
    pids = [server.process.pid, *server.worker_pids()] if server.process else []
    per_request = batch or 1
    connections = 16 if batch else 64
    # Warm-up: connections, code paths, the Lua script cache.
    run_wrk(server.url, path, seconds=1, connections=connections, batch=batch, run_id="warm")
    web_before, redis_before = cpu_seconds(pids), cpu_seconds(redis_pids)
    flat = run_wrk(
        server.url, path, seconds=seconds, connections=connections, batch=batch, run_id="max"
    )
    web_cpu, redis_cpu = cpu_seconds(pids) - web_before, cpu_seconds(redis_pids) - redis_before
    half_rate = flat.rate / 2
    paced_connections = 8 if batch else 32
    interval_ms = max(1, round(paced_connections / half_rate * 1000))
    half = run_wrk(
        server.url, path, seconds=seconds, connections=paced_connections,
        batch=batch, interval_ms=interval_ms, run_id="half",
    )  # fmt: skip
    rss = {pid: round(rss_mb(pid), 1) for pid in server.worker_pids()}
    return {
        "max": _summary(flat, per_request, web_cpu, redis_cpu),
        "half": {**_summary(half, per_request), "offered_rps": round(half_rate, 1)},
        "worker_rss_mb": rss,
    }


def _summary(
    result: LoadResult,
    per_request: int,
    web_cpu: float | None = None,
    redis_cpu: float | None = None,
) -> dict[str, Any]:
    """The figures of one wrk run."""
    cores = os.cpu_count() or 1
    summary: dict[str, Any] = {
        "requests_per_s": round(result.rate, 1),
        "events_per_s": round(result.rate * per_request, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "errors": result.errors,
        "loadgen_cpu_share": round(result.cpu_seconds / (result.seconds * cores), 3),
    }
    if web_cpu is not None and redis_cpu is not None:
        summary["web_cpu_share"] = round(web_cpu / (result.seconds * cores), 3)
        summary["redis_cpu_share"] = round(redis_cpu / (result.seconds * cores), 3)
        # CPU per event is what the capacity model (docs/benchmarks.md) scales from: unlike a
        # rate, it does not move with whatever else shares the host's cores.
        events = max(result.rate * per_request * result.seconds, 1.0)
        summary["web_cpu_us_per_event"] = round(web_cpu / events * 1e6, 1)
        summary["redis_cpu_us_per_event"] = round(redis_cpu / events * 1e6, 1)
    return summary


def measure_raw_xadd(client: redis.Redis, seconds: float) -> dict[str, Any]:
    """Pipelined XADD of the same payload and fields as an ingested event, 500 per round trip."""
    payload = orjson.dumps({
        "event_id": "raw-0", "platform": "discord", "event_type": "message", "user_id": "user-1",
        "channel_id": "general", "content": SAMPLE_TEXTS[0], "timestamp": "2026-01-01T00:00:00Z",
    })  # fmt: skip
    fields: dict[str | bytes, str | bytes | int] = {
        "event": payload,
        "request_id": "0" * 32,
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        "ingested_at": 0,
    }
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pipe = client.pipeline(transaction=False)
        for _ in range(500):
            pipe.xadd("bench:raw", fields)  # type: ignore[arg-type]
        pipe.execute()
        sent += 500
    elapsed = time.perf_counter() - started
    client.delete("bench:raw")
    return {"events_per_s": round(sent / elapsed, 1)}


def measure_cluster(redis_url: str, work: Path, seconds: float, shards: int) -> dict[str, Any]:
    """(b) and (c) again with the streams on a local 3-master Redis Cluster."""
    cluster = RedisCluster(work / "cluster", masters=3)
    cluster.start()
    try:
        pids = [node.process.pid for node in cluster.nodes if node.process is not None]
        env = {"REDIS_CLUSTER_NODES": cluster.addresses, "INGEST_SHARDS": str(shards)}
        with gunicorn(redis_url, "webapp.wsgi:app", work / "cluster-app", **env) as server:
            single = measure_http(server, pids, "/v1/events", seconds)
            cluster.flush()
            batch = measure_http(server, pids, "/v1/events/batch", seconds, batch=500)
    finally:
        cluster.stop()
        shutil.rmtree(work / "cluster", ignore_errors=True)
    return {"masters": 3, "shards": shards, "b_single": single, "c_batch": batch}


def main() -> None:
    """Run the four cases and print/write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument(
        "--cluster", action="store_true", help="also (b) and (c) on a local 3-master Redis Cluster"
    )
    parser.add_argument("--shards", type=int, default=8, help="with --cluster: INGEST_SHARDS")
    options = parser.parse_args()
    shutil.rmtree(OUT / "ingest", ignore_errors=True)
    work = OUT / "ingest"
    store = RedisServer(work / "redis", appendonly=True, appendfsync="everysec")
    store.start()
    assert store.process is not None
    client = connect(store.url, 5.0)
    # An AOF rewrite in the middle of a run would be noise, not a property of the code.
    client.config_set("auto-aof-rewrite-percentage", 0)
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "seconds_per_run": options.seconds,
    }
    try:
        report["d_raw_xadd"] = measure_raw_xadd(client, options.seconds)
        with gunicorn(store.url, "bench.bare_app:app", work / "bare") as server:
            report["a_bare_flask"] = measure_http(
                server, [store.process.pid], "/v1/events", options.seconds
            )
        client.flushall()
        with gunicorn(store.url, "webapp.wsgi:app", work / "app") as server:
            report["b_single"] = measure_http(
                server, [store.process.pid], "/v1/events", options.seconds
            )
            client.flushall()
            report["c_batch"] = measure_http(
                server, [store.process.pid], "/v1/events/batch", options.seconds, batch=500
            )
        if options.cluster:
            client.flushall()
            report["cluster"] = measure_cluster(store.url, work, options.seconds, options.shards)
    finally:
        client.close()
        store.stop()
        shutil.rmtree(work / "redis", ignore_errors=True)
    a, b, c, d = (report[k] for k in ("a_bare_flask", "b_single", "c_batch", "d_raw_xadd"))
    report["ratios"] = {
        "b_over_a": round(b["max"]["requests_per_s"] / a["max"]["requests_per_s"], 3),
        "c_over_d": round(c["max"]["events_per_s"] / d["events_per_s"], 3),
    }
    if "cluster" in report:
        on_cluster = report["cluster"]
        report["ratios"]["cluster_b_over_b"] = round(
            on_cluster["b_single"]["max"]["requests_per_s"] / b["max"]["requests_per_s"], 3
        )
        report["ratios"]["cluster_c_over_c"] = round(
            on_cluster["c_batch"]["max"]["events_per_s"] / c["max"]["events_per_s"], 3
        )
    save("ingest", report, OUT)
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    """Print the report as a table."""
    lines = [f"machine: {report['machine']}, {report['seconds_per_run']} s per run", ""]
    columns = [("req/s", 10), ("events/s", 11), ("p50 ms", 8), ("p99 ms", 8), ("errors", 7)]
    columns += [("web cpu", 8), ("redis", 7), ("wrk cpu", 8)]
    columns += [("web µs/ev", 10), ("redis µs/ev", 12)]
    lines.append(f"{'case':<28}" + "".join(f"{name:>{width}}" for name, width in columns))
    cases = [
        ("(a) bare Flask ceiling", report["a_bare_flask"]),
        ("(b) POST /v1/events", report["b_single"]),
        ("(c) batch of 500", report["c_batch"]),
    ]
    if "cluster" in report:
        cases.append(("(b) on cluster", report["cluster"]["b_single"]))
        cases.append(("(c) on cluster", report["cluster"]["c_batch"]))
    for name, case in cases:
        for load in ("max", "half"):
            row = case[load]
            label = f"{name} {'max' if load == 'max' else '@half'}"
            lines.append(
                f"{label:<28}{row['requests_per_s']:>10}{row['events_per_s']:>11}{row['p50_ms']:>8}"
                f"{row['p99_ms']:>8}{row['errors']:>7}{row.get('web_cpu_share', ''):>8}"
                f"{row.get('redis_cpu_share', ''):>7}{row['loadgen_cpu_share']:>8}"
                f"{row.get('web_cpu_us_per_event', ''):>10}"
                f"{row.get('redis_cpu_us_per_event', ''):>12}"
            )
    lines.append(
        f"{'(d) raw pipelined XADD':<28}{'':>10}{report['d_raw_xadd']['events_per_s']:>11}"
    )
    lines.append("")
    ratios = report["ratios"]
    lines.append(f"(b)/(a) = {ratios['b_over_a']}   target >= 0.75")
    lines.append(f"(c)/(d) = {ratios['c_over_d']}   target >= 0.85")
    if "cluster" in report:
        lines.append(
            f"on {report['cluster']['masters']} masters, {report['cluster']['shards']} shards: "
            f"(b) {ratios['cluster_b_over_b']} and (c) {ratios['cluster_c_over_c']} "
            "of one Redis"
        )
    for key in ("b_single", "c_batch"):
        lines.append(f"{key} worker RSS MB: {report[key]['worker_rss_mb']}   target <= 90")
    lines.append(f"written to {OUT / 'ingest.json'}")
    print("\n".join(lines))  # noqa: T201 - a benchmark's report is its output


if __name__ == "__main__":
    main()
