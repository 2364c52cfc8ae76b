"""Reading the archive: pages of decisions (keyset-paginated, newest first) and user histories."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, func, select, tuple_
from sqlalchemy.orm import Session

from core.archive.records import Cursor, DecisionQuery
from core.archive.store import run
from core.archive.tables import DecisionRow, ReviewRow
from core.models import CATEGORIES

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
RECENT = 20
REVIEWS_SHOWN = 50


def event_view(row: DecisionRow) -> dict[str, Any]:
    """A decisions row in the ArchivedEvent shape of the API (plain data, JSON-ready)."""
    return {
        "platform": row.platform,
        "event_id": row.event_id,
        "stream_id": row.stream_id,
        "outcome": row.outcome,
        "user_id": row.user_id,
        "channel_id": row.channel_id,
        "event_type": row.event_type,
        "content": row.content,
        "timestamp": row.event_timestamp,
        "metadata": row.event_metadata,
        "accepted_at": row.accepted_at,
        "decided_at": row.decided_at,
        "decision": row.receipt,
        "error": row.error,
        "deliveries": row.deliveries,
        "trace_id": row.trace_id,
        "label": row.label,
        "reviewed_at": row.reviewed_at,
        "overturned": row.overturned,
    }


def review_view(row: ReviewRow) -> dict[str, Any]:
    """A reviews row in the Review shape of the API."""
    return {
        "id": row.id,
        "platform": row.platform,
        "event_id": row.event_id,
        "label": row.label,
        "reviewer": row.reviewer,
        "note": row.note,
        "machine_category": row.machine_category,
        "overturn": row.overturn,
        "created_at": row.created_at,
    }


def _filtered(tenant: str, query: DecisionQuery) -> Select[DecisionRow]:
    """The rows a query selects, before ordering and paging."""
    row = DecisionRow
    statement = select(row).where(row.tenant == tenant)
    equal = {
        row.platform: query.platform.value if query.platform else None,
        row.user_id: query.user_id,
        row.channel_id: query.channel_id,
        row.route: query.route,
        row.outcome: query.outcome,
    }
    for column, value in equal.items():
        if value is not None:
            statement = statement.where(column == value)
    if query.category is not None:
        statement = statement.where(row.category == query.category.value)
    if query.since is not None:
        statement = statement.where(row.accepted_at >= query.since)
    if query.until is not None:
        statement = statement.where(row.accepted_at < query.until)
    if query.reviewed is not None:
        statement = statement.where(
            row.label.is_not(None) if query.reviewed else row.label.is_(None)
        )
    return statement


def list_decisions(
    engine: Engine, tenant: str, query: DecisionQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a tenant's archived events, newest first, and the cursor of the next page."""
    row = DecisionRow
    key = (row.accepted_at, row.platform, row.event_id)
    statement = _filtered(tenant, query)
    if query.cursor is not None:
        after = query.cursor
        statement = statement.where(
            tuple_(*key) < tuple_(after.accepted_at, after.platform, after.event_id)
        )
    statement = statement.order_by(*(column.desc() for column in key)).limit(query.limit + 1)

    rows = run(engine, lambda conn: _rows(conn, statement))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = Cursor(
            accepted_at=last.accepted_at, platform=last.platform, event_id=last.event_id
        ).encode()
    return [event_view(r) for r in rows], cursor


def find_event(engine: Engine, tenant: str, platform: str, event_id: str) -> dict[str, Any] | None:
    """A tenant's latest archived event of this identity (ArchivedEvent shape), or None."""
    row = DecisionRow
    statement = (
        select(row)
        .where(row.tenant == tenant, row.platform == platform, row.event_id == event_id)
        .order_by(row.accepted_at.desc())
        .limit(1)
    )
    rows = run(engine, lambda conn: _rows(conn, statement))
    return event_view(rows[0]) if rows else None


def category_counts(engine: Engine, tenant: str, query: DecisionQuery) -> dict[str, int]:
    """How many events each category has among those a query selects (every page of it)."""
    base = _filtered(tenant, query).subquery()
    counted = select(base.c.category, func.count()).group_by(base.c.category)

    def work(conn: Connection) -> dict[str, int]:
        found = {category.value: 0 for category in CATEGORIES}
        for category, number in conn.execute(counted).all():
            if category is not None:
                found[str(category)] = int(number)
        return found

    return run(engine, work)


def daily_counts(
    engine: Engine, tenant: str, platform: str, user_id: str, *, now: datetime, days: int
) -> list[tuple[datetime, int, int]]:
    """A user's (day, high, low) decisions for each of the last `days` UTC days, oldest first."""
    row = DecisionRow
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = func.date_trunc("day", row.accepted_at, "UTC")
    counted = (
        select(day, row.outcome, func.count())
        .where(
            row.tenant == tenant,
            row.platform == platform,
            row.user_id == user_id,
            row.accepted_at >= start,
        )
        .group_by(day, row.outcome)
    )

    def work(conn: Connection) -> list[tuple[datetime, int, int]]:
        found = {start + timedelta(days=n): [0, 0] for n in range(days)}
        for moment, outcome, number in conn.execute(counted).all():
            slot = found.get(moment.astimezone(start.tzinfo))
            if slot is not None and outcome in ("high", "low"):
                slot[0 if outcome == "high" else 1] += int(number)
        return [(moment, high, low) for moment, (high, low) in found.items()]

    return run(engine, work)


def _rows(conn: Connection, statement: Select[DecisionRow]) -> list[DecisionRow]:
    """Execute a select of whole decision rows."""
    with Session(bind=conn) as session:
        return list(session.scalars(statement))


def user_history(
    engine: Engine, tenant: str, platform: str, user_id: str, now: datetime
) -> dict[str, Any] | None:
    """A user's counts per window, first and last events, latest events and reviews, or None."""
    row = DecisionRow
    mine = and_(row.tenant == tenant, row.platform == platform, row.user_id == user_id)
    windows = {name: row.accepted_at >= now - span for name, span in WINDOWS.items()}
    counted = select(
        row.outcome,
        row.category,
        func.count(),
        *(func.count().filter(condition) for condition in windows.values()),
        func.min(row.accepted_at),
        func.max(row.accepted_at),
    ).where(mine)
    counted = counted.group_by(row.outcome, row.category)
    recent = select(row).where(mine).order_by(row.accepted_at.desc(), row.event_id.desc())
    reviews = (
        select(ReviewRow)
        .where(
            ReviewRow.tenant == tenant,
            ReviewRow.platform == platform,
            ReviewRow.user_id == user_id,
        )
        .order_by(ReviewRow.id.desc())
        .limit(REVIEWS_SHOWN)
    )

    def work(conn: Connection) -> dict[str, Any] | None:
        groups = conn.execute(counted).all()
        if not groups:
            return None
        with Session(bind=conn) as session:
            latest = list(session.scalars(recent.limit(RECENT)))
            verdicts = list(session.scalars(reviews))
        names = ["all", *windows]
        counts = {name: _empty_counts() for name in names}
        for outcome, category, *numbers, _first, _last in groups:
            for name, number in zip(names, numbers, strict=False):
                _add(counts[name], outcome, category, int(number))
        return {
            "platform": platform,
            "user_id": user_id,
            "first_seen": min(group[-2] for group in groups),
            "last_seen": max(group[-1] for group in groups),
            "counts": counts,
            "recent": [event_view(r) for r in latest],
            "reviews": [review_view(r) for r in verdicts],
        }

    return run(engine, work)


def _empty_counts() -> dict[str, Any]:
    """A WindowCounts shape with every category and route at zero."""
    return {
        "total": 0,
        "by_category": {category.value: 0 for category in CATEGORIES},
        "by_route": {"high": 0, "low": 0},
        "dead_lettered": 0,
    }


def _add(counts: dict[str, Any], outcome: str, category: str | None, number: int) -> None:
    """Count `number` events of one outcome and category into a window."""
    counts["total"] += number
    if outcome == "dlq":
        counts["dead_lettered"] += number
        return
    counts["by_route"][outcome] += number
    if category is not None:
        counts["by_category"][category] = counts["by_category"].get(category, 0) + number
