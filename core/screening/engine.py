"""The screening engine: normalise, apply rules, embed, find neighbours, score, decide."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import redis

from core.keys import Keys
from core.models import (
    CATEGORIES,
    DEFAULT_TENANT,
    Category,
    Decision,
    Neighbor,
    Platform,
    RuleFlag,
)
from core.screening.artifacts import load_or_build
from core.screening.embedding import CachedEmbedder, Embedder, EmbeddingCache, load_embedder
from core.screening.head import LinearHead, head_features
from core.screening.normalize import normalize
from core.screening.reference import DEFAULT_REFERENCE_PATH, ReferenceIndex, ReferenceSet
from core.screening.rules import (
    DEFAULT_RULES_PATH,
    RedisRepeatCounter,
    RepeatCounter,
    RuleFile,
    RuleHit,
)
from core.screening.scoring import (
    DEFAULT_SCORING_PATH,
    Matrix,
    Scores,
    ScoringConfig,
    rule_scores,
    score,
)
from core.settings import Settings

_PLATFORMS = {platform.value: platform for platform in Platform}


@dataclass(frozen=True, slots=True)
class ScreenItem:
    """One text to screen, with what is known of the event it came from."""

    text: str
    event_id: str | None = None
    platform: str | None = None
    user_id: str | None = None
    ingested_at: datetime | None = None
    tenant: str | None = None  # None: the default tenant


@dataclass
class StageTimes:
    """Seconds spent in each stage of the last batch, for metrics and benchmarks."""

    normalize: float = 0.0
    rules: float = 0.0
    embed: float = 0.0
    search: float = 0.0
    score: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)

    def add_to_totals(self) -> None:
        """Accumulate this batch's stage times into the running totals."""
        for name in ("normalize", "rules", "embed", "search", "score"):
            self.totals[name] = self.totals.get(name, 0.0) + getattr(self, name)


@dataclass(frozen=True)
class Analysis:
    """The parts of a batch's scores, before thresholds turn them into decisions."""

    hits: list[list[RuleHit]]
    rule_per_category: Matrix
    rule_overall: Matrix
    head_probs: Matrix
    neighbour_probs: Matrix
    shown: list[list[Neighbor]]

    def score(self, config: ScoringConfig, platforms: Sequence[str | None]) -> Scores:
        """Blend and threshold these parts under a scoring configuration."""
        return score(
            config,
            rule_per_category=self.rule_per_category,
            rule_overall=self.rule_overall,
            head_probs=self.head_probs,
            neighbour_probs=self.neighbour_probs,
            platforms=platforms,
        )


class ScreeningEngine:
    """Screens batches of texts; one instance per worker process, built by `load_engine`."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        index: ReferenceIndex,
        head: LinearHead,
        rules: RuleFile,
        scoring: ScoringConfig,
        reference_digest: str,
        repeat_counter: RepeatCounter | None = None,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.head = head
        self.rules = rules
        self.scoring = scoring
        self.reference_digest = reference_digest
        self.repeat_counter = repeat_counter
        self.times = StageTimes()
        self._added = 0

    @property
    def version(self) -> str:
        """A short hash naming the rules, thresholds and reference set behind a decision."""
        parts = (
            self.rules.current().version,
            self.scoring.version,
            self.reference_digest,
            str(self._added),
        )
        return hashlib.blake2b("|".join(parts).encode(), digest_size=6).hexdigest()

    def _repeat_counts(self, items: Sequence[ScreenItem], keys: list[str | None]) -> list[int]:
        """Distinct senders seen recently for each text's content (0 without a counter)."""
        counts = [0] * len(items)
        if self.repeat_counter is None:
            return counts
        wanted = [
            (row, key, f"{item.platform}:{item.user_id}")
            for row, (item, key) in enumerate(zip(items, keys, strict=True))
            if key is not None and item.user_id is not None
        ]
        if wanted:
            observed = self.repeat_counter.observe([(key, sender) for _, key, sender in wanted])
            for (row, _, _), count in zip(wanted, observed, strict=True):
                counts[row] = count
        return counts

    def analyse(self, items: Sequence[ScreenItem]) -> Analysis:
        """Everything the scores are made of: rule hits, neighbours and head probabilities."""
        times = self.times
        started = time.perf_counter()
        normalized = [normalize(item.text) for item in items]
        times.normalize = time.perf_counter() - started

        started = time.perf_counter()
        ruleset = self.rules.current()
        repeats = self._repeat_counts(items, [ruleset.repeat_key(text) for text in normalized])
        hits = [
            ruleset.evaluate(item.text, text, repeat)
            for item, text, repeat in zip(items, normalized, repeats, strict=True)
        ]
        rule_per_category, rule_overall = rule_scores(hits)
        times.rules = time.perf_counter() - started

        started = time.perf_counter()
        vectors = self.embedder.encode(normalized)
        times.embed = time.perf_counter() - started

        started = time.perf_counter()
        config = self.scoring
        sims, positions = self.index.search(vectors, config.neighbours)
        neighbour_probs = self.index.votes(sims, positions, config.neighbour_sharpness)
        shown = self.index.neighbors(sims, positions, config.shown_neighbours)
        times.search = time.perf_counter() - started
        head_probs = self.head.predict_proba(head_features(vectors, rule_per_category))
        return Analysis(hits, rule_per_category, rule_overall, head_probs, neighbour_probs, shown)

    def screen(self, items: Sequence[ScreenItem]) -> list[Decision]:
        """Screen a batch and return one decision per item, in order."""
        if not items:
            return []
        analysis = self.analyse(items)
        started = time.perf_counter()
        scores = analysis.score(self.scoring, [item.platform for item in items])
        decisions = self._decisions(items, analysis.hits, analysis.shown, scores)
        self.times.score = time.perf_counter() - started
        self.times.add_to_totals()
        return decisions

    def _decisions(
        self,
        items: Sequence[ScreenItem],
        hits: list[list[RuleHit]],
        shown: list[list[Neighbor]],
        scores: Scores,
    ) -> list[Decision]:
        """Assemble the receipts of a scored batch."""
        now = datetime.now(UTC)
        version = self.version
        model = self.embedder.name
        decisions = []
        for row, item in enumerate(items):
            category_scores = {
                category: round(float(value), 4)
                for category, value in zip(CATEGORIES, scores.category_scores[row], strict=True)
            }
            decisions.append(
                Decision.model_construct(
                    event_id=item.event_id,
                    platform=_PLATFORMS.get(item.platform or ""),
                    tenant=item.tenant or DEFAULT_TENANT,
                    risk_score=round(float(scores.risk[row]), 4),
                    category=CATEGORIES[int(scores.category[row])],
                    category_scores=category_scores,
                    route="high" if scores.high[row] else "low",
                    flags=[
                        RuleFlag(
                            id=hit.rule_id,
                            category=hit.category,
                            weight=hit.weight,
                            evidence=list(hit.evidence),
                        )
                        for hit in hits[row]
                    ],
                    similar=shown[row],
                    heuristic_score=round(float(scores.heuristic[row]), 4),
                    embedding_score=round(float(scores.embedding[row]), 4),
                    model=model,
                    version=version,
                    ingested_at=item.ingested_at,
                    screened_at=now,
                )
            )
        return decisions

    def add_examples(
        self, texts: Sequence[str], labels: Sequence[Category], ids: Sequence[str]
    ) -> None:
        """Add labelled examples to the neighbour index now, without a rebuild."""
        vectors = self.embedder.encode([normalize(text) for text in texts])
        self.index.add(np.asarray(vectors, dtype=np.float32), ids, labels)
        self._added += len(texts)


def load_engine(
    settings: Settings,
    client: redis.Redis | None = None,
    on_cache_lookup: Callable[[int, int], None] | None = None,
) -> ScreeningEngine:
    """Assemble the engine a worker runs: model, cache, rules, reference index, head, scoring.

    Builds the reference index and head under settings.var_dir on first use (see artifacts).
    Without a Redis client the engine runs with no embedding cache and no cross-event signal.
    `on_cache_lookup(hits, misses)` is told about every embedding-cache lookup (for metrics).
    """
    embedder: Embedder = load_embedder(
        settings.embed_model,
        settings.embed_backend,
        settings.embed_device,
        settings.embed_batch_size,
        settings.embed_threads,
        settings.model_dir,
    )
    rules = RuleFile(settings.rules_path or DEFAULT_RULES_PATH, settings.rules_reload_s)
    reference = ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH)
    artifacts = load_or_build(settings.var_dir, embedder, reference, rules.current())
    repeat_counter = None
    if client is not None:
        keys = Keys.from_settings(settings)
        repeat_counter = RedisRepeatCounter(client, keys.repeat, settings.repeat_window_s)
        if settings.embed_cache_ttl_s > 0:
            cache = EmbeddingCache(
                client,
                embedder.name,
                keys=keys,
                ttl_s=settings.embed_cache_ttl_s,
                dim=embedder.dim,
                on_lookup=on_cache_lookup,
            )
            embedder = CachedEmbedder(embedder, cache)
    return ScreeningEngine(
        embedder,
        index=artifacts.index,
        head=artifacts.head,
        rules=rules,
        scoring=ScoringConfig.load(settings.scoring_path or DEFAULT_SCORING_PATH),
        reference_digest=artifacts.reference_digest,
        repeat_counter=repeat_counter,
    )
