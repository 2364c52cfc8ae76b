"""The archive's tables as SQLAlchemy 2 models; the Alembic migrations create exactly these.

`decisions` holds one row per accepted event that reached an outcome (high, low or dead-letter),
partitioned by month of acceptance so that retention drops whole partitions. PostgreSQL needs
the partition key in every unique index, so the key is the event's identity `(tenant, platform,
event_id)` plus `accepted_at`, the acceptance time taken from the event's ingest-stream id: every
delivery of one accepted event carries the same id, so a redelivery lands on the same row. (An
identity accepted again after DEDUP_WINDOW_S is a second acceptance, counted so by the ledger, and
gets a row of its own; lookups by identity read the latest.)

`reviews` is append-only: one row per moderator verdict, with the text it judged, so the labelled
example outlives the decision's partition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint and index names, so migrations and models compare equal.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    """The declarative base of the archive's tables."""

    metadata = MetaData(naming_convention=NAMING)


class DecisionRow(Base):
    """One accepted event and its outcome: the event, the whole receipt, or the DLQ reason."""

    __tablename__ = "decisions"
    __table_args__ = (
        # Newest first within a tenant (GET /v1/decisions), and one user's history.
        Index(None, "tenant", "accepted_at", "platform", "event_id"),
        Index(None, "tenant", "platform", "user_id", "accepted_at"),
        {"postgresql_partition_by": "RANGE (accepted_at)"},
    )

    tenant: Mapped[str] = mapped_column(Text, primary_key=True)
    platform: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    accepted_at: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    stream_id: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)  # high, low or dlq
    user_id: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    event_timestamp: Mapped[datetime] = mapped_column(Timestamp)
    event_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    ingested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
    category: Mapped[str | None] = mapped_column(Text)
    route: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(Text)
    risk_score: Mapped[float | None] = mapped_column(REAL)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    deliveries: Mapped[int | None] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    # The latest review's verdict, kept here for the reviewed/unreviewed filter.
    label: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    overturned: Mapped[bool | None] = mapped_column(Boolean)
    archived_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class ReviewRow(Base):
    """One moderator verdict on a decided event; later rows supersede, none is ever changed."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index(None, "tenant", "platform", "event_id", "id"),
        Index(None, "tenant", "platform", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    decision_accepted_at: Mapped[datetime] = mapped_column(Timestamp)
    user_id: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    machine_category: Mapped[str] = mapped_column(Text)
    overturn: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


DECISIONS = DecisionRow.__table__
REVIEWS = ReviewRow.__table__
