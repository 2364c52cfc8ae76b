"""Decisions as the engine makes them, with known scores: for the streams, the archive and
stand-in engines."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from core.models import Category, Decision, Platform
from core.screening.engine import ScreenItem, StageTimes
from core.stream import Entry


def decision(
    event_id: str | None,
    *,
    route: str = "low",
    category: Category | None = None,
    platform: Platform | None = Platform.DISCORD,
    model: str = "test-model",
    ingested_at: datetime | None = None,
    screened_at: datetime | None = None,
) -> Decision:
    """A valid decision on `route`: risk 0.9 when high, 0.05 when low; the category is TOXIC
    when high and LOW_RISK when low unless given; screened now unless `screened_at`."""
    high = route == "high"
    category = category or (Category.TOXIC if high else Category.LOW_RISK)
    return Decision(
        event_id=event_id,
        platform=platform,
        risk_score=0.9 if high else 0.05,
        category=category,
        category_scores={category: 0.9 if high else 0.95},
        route=route,
        flags=[],
        similar=[],
        heuristic_score=0.0,
        embedding_score=0.0,
        model=model,
        version="v1",
        ingested_at=ingested_at,
        screened_at=screened_at or datetime.now(UTC),
    )


def decision_for(entry: Entry, route: str = "low") -> Decision:
    """A decision on `route` for the event a stream entry carries."""
    event = orjson.loads(entry.event)
    return decision(event["event_id"], route=route, platform=Platform(event["platform"]))


class StandInEngine:
    """Decides every item low risk, with the engine's interface (for tests of what happens
    around screening rather than of the decisions)."""

    def __init__(self) -> None:
        self.times = StageTimes()

    def screen(self, items: list[ScreenItem]) -> list[Decision]:
        """One low-risk decision per item."""
        return [
            decision(
                item.event_id,
                platform=Platform(item.platform) if item.platform else None,
                model="stand-in",
                ingested_at=item.ingested_at,
            )
            for item in items
        ]
