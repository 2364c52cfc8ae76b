"""Beat-ticked tasks that keep the PostgreSQL archive: archive new decisions, drop old months.

`archive` reads the high, low and dead-letter streams through the archive's own consumer group
in batches, upserts each batch in one transaction and acknowledges its entries only after the
commit. It first takes the entries its consumer read but never acknowledged (an archiver killed
between commit and acknowledgement, or before the commit), so every decision is archived, and
the upsert makes the second write of one a no-op. `retain` drops the monthly partitions older
than ARCHIVE_RETENTION_DAYS and makes sure this month's and next month's exist.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from core.archive import (
    DecisionWriter,
    UnreadableEntry,
    build_row,
    drop_expired,
    prepare_months,
)
from core.stream import ArchiveFeed, Delivered
from tasks.app import app
from tasks.runtime import runtime

log = structlog.get_logger(__name__)

ARCHIVER = "archiver"


def _rows(batch: list[Delivered]) -> list[dict[str, Any]]:
    """Rows of a batch; an entry this service never wrote is logged and skipped (acknowledged),
    since no retry could archive it."""
    rows = []
    for item in batch:
        if not item.fields:  # trimmed from the stream while pending: nothing left to archive
            continue
        try:
            rows.append(build_row(item.outcome, item.entry_id, item.fields))
        except UnreadableEntry as exc:
            log.error("archive_entry_unreadable", error=str(exc)[:300])
    return rows


def drain(
    feed: ArchiveFeed,
    writer: DecisionWriter,
    batch_size: int,
    deadline: float,
    consumer: str = ARCHIVER,
) -> Counter[str]:
    """Archive batches until none is left or `deadline` (monotonic) passes; rows per outcome.

    First what a killed archiver left unacknowledged, then new entries; each batch is upserted
    in one transaction and its entries acknowledged only after the commit. (Reading the next
    batch while the previous one was written gave no gain beyond noise in `make
    bench-archive`, so the loop stays sequential.)
    """
    archived: Counter[str] = Counter()
    pending = True
    while time.monotonic() < deadline:
        batch = feed.read(consumer, batch_size, pending=pending)
        if not batch:
            if not pending:
                break
            pending = False
            continue
        rows = _rows(batch)
        writer.write(rows)
        feed.ack(batch)  # only now: the rows are committed
        archived.update(row["outcome"] for row in rows)
    return archived


@app.task(name="tasks.archiver.archive", ignore_result=True)
def archive() -> dict[str, int]:
    """Archive new decisions and dead letters for up to one beat interval."""
    current = runtime()
    writer = current.archive_writer
    if writer is None:
        return {"archived": 0}
    settings = current.settings
    deadline = time.monotonic() + settings.archive_interval_s * 0.9
    archived: Counter[str] = Counter()
    feeds = current.archive_feeds
    for i, feed in enumerate(feeds):  # on a Redis Cluster each shard gets its part of the tick
        feed.ensure_groups()
        now = time.monotonic()
        share = now + (deadline - now) / (len(feeds) - i)
        archived += drain(feed, writer, settings.archive_batch_size, share)
    for outcome, count in archived.items():
        current.batcher_metrics.archived.labels(outcome).inc(count)
    total = sum(archived.values())
    if total:
        log.info("archived", rows=total)
    return {"archived": total}


@app.task(name="tasks.archiver.retain", ignore_result=True)
def retain() -> dict[str, Any]:
    """Drop partitions past the retention period; create this month's and next month's."""
    current = runtime()
    if current.archive is None:
        return {"dropped": []}
    now = datetime.now(UTC)
    prepare_months(current.archive, [now, now + timedelta(days=31)])
    dropped = drop_expired(current.archive, current.settings.archive_retention_days, now)
    if dropped:
        log.info("archive_partitions_dropped", partitions=dropped)
    return {"dropped": dropped}
