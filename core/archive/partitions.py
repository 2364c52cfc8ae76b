"""Monthly partitions of the decisions table: their names, creation and retention.

A partition `decisions_yYYYYmMM` holds the rows accepted in that calendar month (UTC). The
archiver creates the partition of every month it is about to write (so no row ever lacks one),
and retention drops partitions whose whole month is older than ARCHIVE_RETENTION_DAYS: dropping
a partition is instant and leaves no dead rows behind, where DELETE would rewrite the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

PARENT = "decisions"
_NAME = re.compile(r"^decisions_y(\d{4})m(\d{2})$")
# Serialises partition DDL between archivers (any fixed number; the archive's own).
_DDL_LOCK = 0x61726368


def month_of(moment: datetime) -> tuple[int, int]:
    """The (year, month) of a moment, in UTC."""
    moment = moment.astimezone(UTC)
    return moment.year, moment.month


def next_month(year: int, month: int) -> tuple[int, int]:
    """The month after (year, month)."""
    return (year + 1, 1) if month == 12 else (year, month + 1)


def partition_name(year: int, month: int) -> str:
    """The table name of one month's partition."""
    return f"{PARENT}_y{year:04d}m{month:02d}"


def is_partition_name(name: str) -> bool:
    """Whether a table name is one of the monthly partitions (not part of the models)."""
    return _NAME.match(name) is not None


def existing(conn: Connection) -> dict[str, tuple[int, int]]:
    """The monthly partitions attached to the decisions table, by name."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
        ),
        {"parent": PARENT},
    ).scalars()
    found = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            found[name] = (int(match.group(1)), int(match.group(2)))
    return found


def ensure(conn: Connection, months: Iterable[tuple[int, int]]) -> None:
    """Create the partitions of these months that do not exist yet (in the caller's transaction)."""
    wanted = sorted(set(months))
    if not wanted:
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
    have = existing(conn)
    for year, month in wanted:
        name = partition_name(year, month)
        if name in have:
            continue
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(*next_month(year, month), 1, tzinfo=UTC)
        conn.execute(
            text(
                f'CREATE TABLE "{name}" PARTITION OF {PARENT} '
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )


def drop_expired(conn: Connection, retention_days: int, now: datetime | None = None) -> list[str]:
    """Drop every partition whose month ended more than `retention_days` ago; return their names."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
    dropped = []
    for name, (year, month) in sorted(existing(conn).items()):
        end = datetime(*next_month(year, month), 1, tzinfo=UTC)
        if end <= cutoff:
            conn.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped
