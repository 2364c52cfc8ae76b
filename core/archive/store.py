"""The archive's database: the engine, batched upserts of decisions, retention and totals.

Writes are batched: one transaction per batch, its rows sent as multi-row INSERT ... ON CONFLICT
statements (SQLAlchemy's insertmanyvalues on psycopg 3), so a batch of 500 costs a handful of
round trips. The conflict target is the row's key, so writing a batch again (a redelivery after
a crash between commit and acknowledgement) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, OperationalError

from core.archive import partitions
from core.archive.errors import ArchiveUnavailable
from core.archive.tables import DecisionRow

KEY = ("tenant", "platform", "event_id", "accepted_at")
# What a redelivered entry may rewrite: everything it carries, never the review columns.
_REVIEW_COLUMNS = {"label", "reviewed_at", "overturned", "archived_at"}
T = TypeVar("T")


def database_url(url: str) -> str:
    """The SQLAlchemy URL of a DATABASE_URL: plain postgresql:// URLs use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def open_archive(url: str, *, pool_size: int = 5) -> Engine:
    """An engine on the archive's database; it connects on first use and checks idle ones."""
    return create_engine(
        database_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


@contextmanager
def unavailable_as_archive_error() -> Iterator[None]:
    """Turn a lost or refused database connection into ArchiveUnavailable."""
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise ArchiveUnavailable(f"the archive database is unreachable: {exc.orig}") from exc
        raise


def run(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction, committed when it returns."""
    with unavailable_as_archive_error(), engine.begin() as conn:
        return work(conn)


class DecisionWriter:
    """Upserts batches of decision rows, creating the partitions their months need."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._months: set[tuple[int, int]] = set()  # partitions known to exist
        statement = pg_insert(DecisionRow)
        updates = {
            column.name: statement.excluded[column.name]
            for column in DecisionRow.__table__.columns
            if column.name not in KEY and column.name not in _REVIEW_COLUMNS
        }
        self._upsert = statement.on_conflict_do_update(index_elements=list(KEY), set_=updates)

    def write(self, rows: Sequence[dict[str, Any]]) -> int:
        """Upsert rows in one transaction; returns how many were written."""
        if not rows:
            return 0
        # One order for every writer: two overlapping batches then lock rows in the same order.
        ordered = sorted(rows, key=lambda r: tuple(r[k] for k in KEY))
        months = {partitions.month_of(row["accepted_at"]) for row in ordered}

        def work(conn: Connection) -> int:
            missing = months - self._months
            if missing:
                partitions.ensure(conn, missing)
            conn.execute(self._upsert, [_columns(row) for row in ordered])
            return len(ordered)

        written = run(self.engine, work)
        self._months |= months
        return written


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    """A row keyed by column names (the model's attribute for `metadata` differs)."""
    values = dict(row)
    values["metadata"] = values.pop("event_metadata", None)
    return values


def prepare_months(engine: Engine, moments: Sequence[datetime]) -> None:
    """Create the partitions of the months these moments fall in (e.g. this month and next)."""
    run(engine, lambda conn: partitions.ensure(conn, map(partitions.month_of, moments)))


def drop_expired(engine: Engine, retention_days: int, now: datetime | None = None) -> list[str]:
    """Drop the partitions wholly older than the retention period; return their names."""
    return run(engine, lambda conn: partitions.drop_expired(conn, retention_days, now))


def totals_by_outcome(engine: Engine) -> dict[str, int]:
    """How many archived events ended high, low and dead-lettered (every tenant)."""

    def work(conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(DecisionRow.outcome, func.count()).group_by(DecisionRow.outcome)
        ).all()
        return {"high": 0, "low": 0, "dlq": 0} | {str(o): int(n) for o, n in rows}

    return run(engine, work)
