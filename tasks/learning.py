"""Moderators' reviews as live examples of a screening worker's engine.

A worker that starts rebuilds them from the archive (the latest verdict of every reviewed
event), then reads the labels stream on from where the stream stood before that rebuild; before
each screening call it applies the labels published since, looking at most once every
REVIEW_PROPAGATION_S. Each review is an example of its tenant's only; an example id seen
again (a later review of the same event) takes the newer label.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from sqlalchemy import Engine

from core.archive import ArchiveError, LabelledExample, latest_examples
from core.errors import CoreError
from core.models import Category
from core.screening import ScreeningEngine
from core.stream import Label, LabelStream

log = structlog.get_logger(__name__)
# How soon a worker whose rebuild failed (archive unreachable) tries again; meanwhile it screens
# with what it has rather than waiting on the database before every batch.
REBUILD_RETRY_S = 30.0


class LiveExamples:
    """Keeps one engine's runtime examples in step with the reviews."""

    def __init__(self, labels: LabelStream, archive: Engine | None, every_s: float) -> None:
        self.labels = labels
        self.archive = archive
        self.every_s = every_s
        self.position: str | None = None  # last labels-stream id applied; None: not rebuilt
        self._next_look = 0.0  # monotonic time of the next look

    def refresh(self, engine: ScreeningEngine) -> int:
        """Apply what was reviewed since the last look, if that look is older than the interval.

        Returns how many examples were added or relabelled; never raises (screening goes on
        with what the engine has, and the next call tries again).
        """
        now = time.monotonic()
        if now < self._next_look:
            return 0
        self._next_look = now + self.every_s
        try:
            if self.position is None:
                return self._rebuild(engine)
            labels, self.position = self.labels.after(self.position)
        except CoreError as exc:
            log.warning("live_examples_not_refreshed", error=str(exc)[:300])
            self._next_look = now + max(self.every_s, REBUILD_RETRY_S)
            return 0
        return self._apply(engine, labels)

    def _rebuild(self, engine: ScreeningEngine) -> int:
        """Every reviewed event's latest verdict from the archive, then the stream from here."""
        position = self.labels.last_id()  # before the archive read: nothing falls in between
        examples: list[LabelledExample] = []
        if self.archive is not None:
            try:
                examples = latest_examples(self.archive)
            except ArchiveError as exc:
                log.warning("live_examples_rebuild_failed", error=str(exc)[:300])
                self._next_look = time.monotonic() + max(self.every_s, REBUILD_RETRY_S)
                return 0
        labels = [Label(e.tenant, e.example_id, e.label.value, e.text) for e in examples]
        added = self._apply(engine, labels)
        self.position = position
        log.info("live_examples_rebuilt", examples=added, position=position)
        return added

    @staticmethod
    def _apply(engine: ScreeningEngine, labels: Sequence[Label]) -> int:
        """Add labelled texts to the engine, each for its own tenant only (a review by one
        tenant never moves another's decisions): the one place reviews reach add_examples."""
        by_tenant: dict[str, list[Label]] = {}
        for label in labels:
            by_tenant.setdefault(label.tenant, []).append(label)
        for tenant, own in by_tenant.items():
            engine.add_examples(
                [label.text for label in own],
                [Category(label.label) for label in own],
                [label.example_id for label in own],
                tenant=tenant,
            )
        return len(labels)
