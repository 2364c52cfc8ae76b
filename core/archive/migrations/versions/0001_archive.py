"""The decision archive: monthly-partitioned decisions and append-only reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the decisions table (partitioned by month of acceptance) and the reviews table."""
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "decisions",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("accepted_at", ts, nullable=False),
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("event_timestamp", ts, nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=True),
        sa.Column("ingested_at", ts, nullable=True),
        sa.Column("decided_at", ts, nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("risk_score", sa.REAL(), nullable=True),
        sa.Column("receipt", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("reviewed_at", ts, nullable=True),
        sa.Column("overturned", sa.Boolean(), nullable=True),
        sa.Column("archived_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "platform", "event_id", "accepted_at", name="pk_decisions"
        ),
        postgresql_partition_by="RANGE (accepted_at)",
    )
    op.create_index(
        "ix_decisions_tenant_accepted_at_platform_event_id",
        "decisions",
        ["tenant", "accepted_at", "platform", "event_id"],
    )
    op.create_index(
        "ix_decisions_tenant_platform_user_id_accepted_at",
        "decisions",
        ["tenant", "platform", "user_id", "accepted_at"],
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("decision_accepted_at", ts, nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("machine_category", sa.Text(), nullable=False),
        sa.Column("overturn", sa.Boolean(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index(
        "ix_reviews_tenant_platform_event_id_id",
        "reviews",
        ["tenant", "platform", "event_id", "id"],
    )
    op.create_index(
        "ix_reviews_tenant_platform_user_id_id", "reviews", ["tenant", "platform", "user_id", "id"]
    )


def downgrade() -> None:
    """Drop both tables (and with the decisions table, every partition)."""
    op.drop_table("reviews")
    op.drop_table("decisions")
