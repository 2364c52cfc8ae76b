"""`make bench-console`: the server time of the console's queue page for 50 rows.

In one run, on one PostgreSQL and one Redis holding ROWS archived decisions (a quarter high
risk, receipts shaped like the engine's): (1) the ceiling: GET /v1/decisions?route=high&limit=50,
the JSON API reading the same 50 rows; (2) the console's queue page, GET /console/, which reads
those rows and the per-category counts and renders them as HTML. Each is served by the web
app in-process (no network), signed in as a moderator, and timed over REPEATS requests after a
warm-up; the figures are medians. The target is (2) under 200 ms. Writes var/bench/console.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from bench.archive import entries
from bench.report import save
from core.archive import DecisionWriter, build_row, open_archive
from core.archive.schema import migrate
from core.settings import Settings
from devtools.postgres_server import PostgresServer
from devtools.redis_server import RedisServer
from webapp import create_app

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
KEY = "bench-key"


def median_ms(client: FlaskClient, path: str, repeats: int, **headers: str) -> float:
    """Median milliseconds of `repeats` GETs of `path` (after two warm-up requests)."""
    timings = []
    for n in range(repeats + 2):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")
        if n >= 2:
            timings.append(elapsed * 1000)
    return statistics.median(timings)


def signed_in(client: FlaskClient) -> FlaskClient:
    """The client signed in to the console, through its form."""
    page = client.get("/console/sign-in").get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    if match is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    form = {"api_key": KEY, "moderator": "bench", "csrf_token": match.group(1)}
    if client.post("/console/sign-in", data=form).status_code != 303:
        raise RuntimeError("could not sign in")
    return client


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=31)
    options = parser.parse_args()
    work = OUT / "console"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = RedisServer(work / "redis")
    database = PostgresServer(work / "postgres")
    report: dict[str, Any] = {"rows": options.rows, "page_rows": 50, "repeats": options.repeats}
    try:
        store.start()
        database.start()
        migrate(database.url)
        produced = entries(options.rows)
        rows = [build_row("high" if "high" in s else "low", f["stream_id"], f) for s, f in produced]
        engine = open_archive(database.url)
        writer = DecisionWriter(engine)
        for start in range(0, len(rows), 1000):
            writer.write(rows[start : start + 1000])
        engine.dispose()
        settings = Settings(redis_url=store.url, database_url=database.url, api_keys=[KEY])
        client = signed_in(create_app(settings).test_client())
        api = median_ms(client, "/v1/decisions?route=high&limit=50", options.repeats, **{
            "X-API-Key": KEY})  # fmt: skip
        page = median_ms(client, "/console/", options.repeats)
        shown = client.get("/console/").get_data(as_text=True).count("<tr data-key=")
        report.update(
            api_ceiling_ms=round(api, 2),
            queue_page_ms=round(page, 2),
            page_over_ceiling=round(page / api, 2),
            rows_shown=shown,
        )
    finally:
        database.stop()
        store.stop()
    save("console", report, OUT)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.stdout.write("target: queue_page_ms < 200\n")


if __name__ == "__main__":
    main()
