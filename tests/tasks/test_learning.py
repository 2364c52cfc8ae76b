"""Reviews reach a worker's engine: rebuilt from the archive at start, then read from the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from core.archive import DecisionWriter, add_review, open_archive
from core.models import Category
from core.stream import Label, LabelStream
from tasks.learning import LiveExamples
from tests.factories import entry_fields, now, rows_of


class RecordingEngine:
    """Stands in for the screening engine (its search is not the point): records examples."""

    def __init__(self) -> None:
        self.examples: list[tuple[str, Category, str]] = []
        self.tenants: list[str | None] = []

    def add_examples(
        self,
        texts: Sequence[str],
        labels: Sequence[Category],
        ids: Sequence[str],
        tenant: str | None = None,
    ) -> None:
        self.examples += list(zip(texts, labels, ids, strict=True))
        self.tenants += [tenant] * len(texts)


def test_a_starting_worker_rebuilds_from_the_archive_then_follows_the_stream(
    redis_client: redis.Redis, database_url: str
) -> None:
    archive = open_archive(database_url)
    DecisionWriter(archive).write(rows_of(("high", entry_fields("e1", accepted=now()))))
    add_review(archive, "default", "discord", "e1", label=Category.SPAM, reviewer="m", note=None)
    labels = LabelStream(redis_client)
    labels.publish(Label("default", "review:default:discord:e1", "SPAM", "hello there"))
    engine: Any = RecordingEngine()
    live = LiveExamples(labels, archive, every_s=0)
    assert live.refresh(engine) == 1  # the archive's review; the stream so far is skipped
    assert engine.examples == [("hello there", Category.SPAM, "review:default:discord:e1")]
    labels.publish(Label("default", "review:default:discord:e1", "LOW_RISK", "hello there"))
    assert live.refresh(engine) == 1
    assert engine.examples[-1][1] is Category.LOW_RISK  # the same id, relabelled
    assert live.refresh(engine) == 0
    assert engine.tenants == ["default", "default"]
    archive.dispose()


def test_each_review_teaches_only_its_own_tenant(redis_client: redis.Redis) -> None:
    labels = LabelStream(redis_client)
    engine: Any = RecordingEngine()
    live = LiveExamples(labels, None, every_s=0)
    live.refresh(engine)
    labels.publish(Label("acme", "review:acme:discord:e1", "TOXIC", "you idiot"))
    labels.publish(Label("globex", "review:globex:discord:e2", "LOW_RISK", "see you"))
    assert live.refresh(engine) == 2
    assert dict(zip((e[2] for e in engine.examples), engine.tenants, strict=True)) == {
        "review:acme:discord:e1": "acme",
        "review:globex:discord:e2": "globex",
    }


def test_labels_are_looked_for_at_most_once_per_interval(redis_client: redis.Redis) -> None:
    labels = LabelStream(redis_client)
    engine: Any = RecordingEngine()
    live = LiveExamples(labels, None, every_s=3600)
    live.refresh(engine)
    labels.publish(Label("default", "review:x", "TOXIC", "you idiot"))
    assert live.refresh(engine) == 0  # not looked for yet
    live._next_look = 0  # the interval has passed
    assert live.refresh(engine) == 1


def test_an_unreachable_archive_leaves_screening_going_and_is_retried_later(
    redis_client: redis.Redis,
) -> None:
    archive = open_archive("postgresql://nobody@127.0.0.1:1/none")
    engine: Any = RecordingEngine()
    live = LiveExamples(LabelStream(redis_client), archive, every_s=0)
    assert live.refresh(engine) == 0
    assert live.position is None and live.refresh(engine) == 0  # waits before retrying
    archive.dispose()
