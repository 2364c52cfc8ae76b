"""`make bench-archive`: how fast the archiver archives decisions, next to PostgreSQL's ceiling.

In one run, on one PostgreSQL (durable settings, as `make run` starts it) and one Redis:
(1) the ceiling: the same rows inserted by one plain `COPY` into the decisions table; (2) the
archive writer alone: those rows upserted in batches of ARCHIVE_BATCH_SIZE (one transaction
each); (3) the archiver end to end: decisions waiting on the high and low streams, read through
the archive group, turned into rows, upserted and acknowledged, batch after batch, until none is
left. The target is (3) >= 50% of (1), and far above the pipeline's screening rate, so the
archive is never the bottleneck. Writes var/bench/archive.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis
from sqlalchemy import Engine

from bench.e2e import texts_for
from bench.report import save
from core.archive import DecisionWriter, build_row, open_archive
from core.archive.schema import migrate
from core.keys import Keys
from core.stream import ArchiveFeed
from devtools.postgres_server import PostgresServer
from devtools.redis_server import RedisServer
from tasks.archiver import drain

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
CONSUMER = "bench-archiver"


def receipt(event_id: str, text: str, moment: datetime, high: bool) -> str:
    """A decision receipt shaped like the engine's (flags, neighbours, per-category scores)."""
    category = "TOXIC" if high else "LOW_RISK"
    return orjson.dumps(
        {
            "event_id": event_id, "platform": "discord", "risk_score": 0.71 if high else 0.04,
            "category": category,
            "category_scores": {c: 0.1 for c in ("LOW_RISK", "SPAM", "TOXIC",
                                "TARGETED_HARASSMENT", "HATE_SPEECH", "VIOLENCE", "SEXUAL")},
            "route": "high" if high else "low",
            "flags": [{"id": "insult", "category": "TOXIC", "weight": 0.6,
                       "evidence": [text[:20]]}] if high else [],
            "similar": [{"id": f"ref:{i}", "label": category, "similarity": 0.8 - i / 10}
                        for i in range(3)],
            "heuristic_score": 0.6 if high else 0.0, "embedding_score": 0.5,
            "model": "all-MiniLM-L6-v2", "version": "0123456789ab",
            "ingested_at": moment.isoformat(), "screened_at": moment.isoformat(),
            "action": "review" if high else "allow",
        }
    ).decode()  # fmt: skip


def entries(count: int) -> list[tuple[str, dict[str, str]]]:
    """(stream, fields) of `count` decisions as the decide script writes them."""
    texts = texts_for(count, 0)
    base = int(time.time() * 1000) - count
    keys = Keys()
    out = []
    for i in range(count):
        text = texts[i % len(texts)]
        moment = datetime.fromtimestamp((base + i) / 1000, UTC)
        event = {
            "event_id": f"b-{i}", "platform": "discord", "event_type": "message",
            "user_id": f"u{i % 997}", "channel_id": "general", "content": text,
            "timestamp": moment.isoformat(),
        }  # fmt: skip
        high = i % 4 == 0
        out.append(
            (
                keys.high_stream if high else keys.low_stream,
                {
                    "stream_id": f"{base + i}-0",
                    "decision": receipt(event["event_id"], text, moment, high),
                    "event": orjson.dumps(event).decode(),
                    "request_id": f"req-{i}",
                    "traceparent": f"00-{i:032x}-{i:016x}-01",
                },
            )
        )
    return out


def copy_rate(dsn: str, rows: list[dict[str, Any]]) -> float:
    """Rows/s of one COPY of `rows` into the emptied decisions table (the ceiling)."""
    columns = [c for c in rows[0] if c != "event_metadata"] + ["metadata"]
    jsonb = {"receipt", "metadata"}
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE decisions")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            names = ", ".join(columns)
            with cursor.copy(f"COPY decisions ({names}) FROM STDIN") as copy:
                for row in rows:
                    values = {**row, "metadata": row.get("event_metadata")}
                    copy.write_row(
                        [orjson.dumps(values[c]).decode() if c in jsonb and values[c] is not None
                         else values[c] for c in columns]
                    )  # fmt: skip
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def writer_rate(dsn: str, engine: Engine, rows: list[dict[str, Any]], batch: int) -> float:
    """Rows/s of the archive writer upserting built rows in batches, into an emptied table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions")
    writer = DecisionWriter(engine)
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        writer.write(rows[start : start + batch])
    return len(rows) / (time.perf_counter() - started)


def archiver_rate(
    dsn: str,
    engine: Engine,
    client: redis.Redis,
    produced: list[tuple[str, dict[str, str]]],
    batch: int,
) -> float:
    """Rows/s of the archiver's loop (tasks.archiver.drain): read through the group, build rows,
    upsert, acknowledge."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions")
    pipe = client.pipeline(transaction=False)
    for stream, fields in produced:
        pipe.xadd(stream, fields)  # type: ignore[arg-type]
    pipe.execute()
    feed = ArchiveFeed(client)
    feed.ensure_groups()
    writer = DecisionWriter(engine)
    started = time.perf_counter()
    archived = sum(drain(feed, writer, batch, time.monotonic() + 3600, CONSUMER).values())
    seconds = time.perf_counter() - started
    if archived != len(produced) or feed.lag_seconds() != 0:
        raise RuntimeError(f"archived {archived} of {len(produced)}")
    return archived / seconds


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500, help="ARCHIVE_BATCH_SIZE")
    options = parser.parse_args()
    work = OUT / "archive"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = RedisServer(work / "redis")
    database = PostgresServer(work / "postgres")
    report: dict[str, Any] = {"rows": options.rows, "batch_size": options.batch_size}
    try:
        store.start()
        database.start()
        migrate(database.url)
        dsn = f"host=127.0.0.1 port={database.port} user=postgres dbname=screening"
        produced = entries(options.rows)
        rows = [build_row("high" if "high" in s else "low", f["stream_id"], f) for s, f in produced]
        engine = open_archive(database.url)
        DecisionWriter(engine).write(rows[:1])  # creates the month's partition
        report["copy_ceiling_rows_per_s"] = round(copy_rate(dsn, rows), 1)

        report["writer_rows_per_s"] = round(writer_rate(dsn, engine, rows, options.batch_size), 1)
        client = redis.Redis.from_url(store.url)
        rate = archiver_rate(dsn, engine, client, produced, options.batch_size)
        report["archiver_rows_per_s"] = round(rate, 1)
        report["archiver_over_ceiling"] = round(rate / report["copy_ceiling_rows_per_s"], 3)
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM decisions").fetchone()
        report["rows_stored"] = stored[0] if stored else 0
        engine.dispose()
        client.close()
    finally:
        database.stop()
        store.stop()
    save("archive", report, OUT)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.stdout.write("target: archiver_over_ceiling >= 0.5, archiver_rows_per_s >> 300\n")


if __name__ == "__main__":
    main()
