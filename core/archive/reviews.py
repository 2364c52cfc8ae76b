"""Moderator reviews: recorded append-only next to the decision, and read back as examples.

A review is a new row every time (the earlier ones stay for audit); the decision row keeps the
latest verdict for filtering. Each review also names the text it judged, so the labelled example
survives the retention of the decision's partition, and a screening worker that starts can
rebuild its live examples from the latest verdict of every reviewed event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from core.archive.errors import NotDecided, UnknownEvent
from core.archive.queries import review_view
from core.archive.store import run
from core.archive.tables import DecisionRow, ReviewRow
from core.models import Category


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """A reviewed text and its latest verdict, as a screening worker adds it to its examples."""

    review_id: int
    tenant: str
    example_id: str
    label: Category
    text: str


def example_id(tenant: str, platform: str, event_id: str) -> str:
    """The reference-example id of a reviewed event (a later review relabels the same id)."""
    return f"review:{tenant}:{platform}:{event_id}"


def add_review(
    engine: Engine,
    tenant: str,
    platform: str,
    event_id: str,
    *,
    label: Category,
    reviewer: str,
    note: str | None,
) -> tuple[dict[str, Any], LabelledExample]:
    """Record a verdict on the latest decision of an event; returns the review and its example.

    Raises UnknownEvent when the archive has no such event, NotDecided when it was dead-lettered.
    """

    def work(conn: Connection) -> tuple[dict[str, Any], LabelledExample]:
        with Session(bind=conn) as session:
            decision = session.scalars(
                select(DecisionRow)
                .where(
                    DecisionRow.tenant == tenant,
                    DecisionRow.platform == platform,
                    DecisionRow.event_id == event_id,
                )
                .order_by(DecisionRow.accepted_at.desc())
                .limit(1)
                .with_for_update()  # reviews of one event are recorded one after the other
            ).first()
            if decision is None:
                raise UnknownEvent(f"no archived event {platform}/{event_id}")
            if decision.outcome == "dlq" or decision.category is None:
                raise NotDecided(f"event {platform}/{event_id} was dead-lettered, never decided")
            review = ReviewRow(
                tenant=tenant,
                platform=platform,
                event_id=event_id,
                decision_accepted_at=decision.accepted_at,
                user_id=decision.user_id,
                label=label.value,
                reviewer=reviewer,
                note=note,
                machine_category=decision.category,
                overturn=label.value != decision.category,
                content=decision.content,
            )
            session.add(review)
            session.flush()  # assigns the id and created_at
            session.execute(
                update(DecisionRow)
                .where(
                    DecisionRow.tenant == tenant,
                    DecisionRow.platform == platform,
                    DecisionRow.event_id == event_id,
                    DecisionRow.accepted_at == decision.accepted_at,
                )
                .values(
                    label=label.value, reviewed_at=review.created_at, overturned=review.overturn
                )
            )
            session.refresh(review)
            example = LabelledExample(
                review.id, tenant, example_id(tenant, platform, event_id), label, review.content
            )
            return review_view(review), example

    return run(engine, work)


def latest_examples(engine: Engine) -> list[LabelledExample]:
    """The latest verdict of every reviewed event, oldest review first."""
    latest = (
        select(ReviewRow)
        .ext(distinct_on(ReviewRow.tenant, ReviewRow.platform, ReviewRow.event_id))
        .order_by(ReviewRow.tenant, ReviewRow.platform, ReviewRow.event_id, ReviewRow.id.desc())
    )

    def work(conn: Connection) -> list[LabelledExample]:
        with Session(bind=conn) as session:
            rows = list(session.scalars(latest))
        rows.sort(key=lambda r: r.id)
        return [
            LabelledExample(
                r.id,
                r.tenant,
                example_id(r.tenant, r.platform, r.event_id),
                Category(r.label),
                r.content,
            )
            for r in rows
        ]

    return run(engine, work)


def export_rows(engine: Engine) -> Iterator[tuple[str, str, str]]:
    """(text, label, source) of every reviewed event's latest verdict, for a training CSV."""
    for example in latest_examples(engine):
        yield example.text, example.label.value, f"review:{example.tenant}"
