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
from core.screening.embedding import CachedEmbedder, Embedder, EmbeddingCache, load_embedder
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.reference.spec import IndexSpec
from core.screening.reference.vectors import load_or_embed
from core.screening.rules import (
    DEFAULT_RULES_PATH,
    RedisRepeatCounter,
    RepeatCounter,
    RuleFile,
    RuleHit,
    UserHistory,
)
from core.screening.scoring.arrays import LOW, Matrix
from core.screening.scoring.blender import Blender, Signals
from core.screening.scoring.bundle import DEFAULT_MODEL_PATH, ModelBundle
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig
from core.screening.scoring.examples import Adjustment, RuntimeExamples
from core.screening.scoring.head import LinearHead
from core.screening.scoring.profanity import ProfanityModel
from core.screening.scoring.scores import Scores, rule_scores, score
from core.screening.text.normalization import normalize
from core.screening.text.target import target_features
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
    # Whose event this is: its runtime examples apply, and the decision names it. None (texts
    # screened outside any tenant, as in the evaluation): only the global examples apply.
    tenant: str | None = None
    history: UserHistory | None = None  # the sender's recent counts, when the caller knows them
    # Whether this text is an event that counts towards cross-event signals (the same content
    # from many senders). False for texts screened on request (POST /v1/screen), which store
    # nothing: they read the counts their tenant's events made, and add none.
    counts: bool = True


@dataclass
class StageTimes:
    """Seconds spent in each stage of the last batch, for metrics and benchmarks."""

    normalize: float = 0.0
    rules: float = 0.0
    embed: float = 0.0
    search: float = 0.0
    profanity: float = 0.0
    score: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)

    def add_to_totals(self) -> None:
        """Accumulate this batch's stage times into the running totals."""
        for name in ("normalize", "rules", "embed", "search", "profanity", "score"):
            self.totals[name] = self.totals.get(name, 0.0) + getattr(self, name)


@dataclass(frozen=True)
class Analysis:
    """The parts of a batch's scores, before thresholds turn them into decisions."""

    hits: list[list[RuleHit]]
    signals: Signals
    base_log_odds: Matrix  # (n,) the blend before runtime examples
    adjustment: Adjustment  # what runtime examples did (nothing when there are none)
    contributions: dict[str, Matrix]  # each signal's share of the final log-odds
    shown: list[list[Neighbor]]
    vectors: Matrix

    def score(self, config: ScoringConfig, platforms: Sequence[str | None]) -> Scores:
        """Threshold these parts under a scoring configuration."""
        return score(
            config,
            log_odds=self.adjustment.log_odds,
            category_probs=self.adjustment.category_probs,
            platforms=platforms,
        )

    @property
    def embedding_score(self) -> Matrix:
        """How harmful the embedding-based signals (head and neighbours) find each text."""
        head = np.clip(1.0 - self.signals.head_scores[:, LOW], 0.0, 1.0)
        result: Matrix = (head + 1.0 - self.signals.neighbour_probs[:, LOW]) / 2
        return result


class ScreeningEngine:
    """Screens batches of texts; one instance per worker process, built by `load_engine`."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        index: ReferenceIndex,
        head: LinearHead,
        blender: Blender,
        profanity: ProfanityModel,
        rules: RuleFile,
        scoring: ScoringConfig,
        reference_digest: str,
        repeat_counter: RepeatCounter | None = None,
        model_version: str = "",
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.head = head
        self.blender = blender
        self.profanity = profanity
        self.examples = RuntimeExamples(embedder.dim, scoring.examples)
        self.model_version = model_version
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
            self.model_version,
            str(self._added),
        )
        return hashlib.blake2b("|".join(parts).encode(), digest_size=6).hexdigest()

    def _repeat_counts(self, items: Sequence[ScreenItem], keys: list[str | None]) -> list[int]:
        """Distinct senders seen recently, within the item's tenant, for each text's content
        (0 without a counter). Items that `count` record their sender; the others only read."""
        counts = [0] * len(items)
        if self.repeat_counter is None:
            return counts
        recorded: list[tuple[int, str, str]] = []
        read: list[tuple[int, str]] = []
        for row, (item, key) in enumerate(zip(items, keys, strict=True)):
            if key is None or item.user_id is None:
                continue
            # One tenant's senders never count towards another tenant's content.
            scoped = f"{item.tenant or DEFAULT_TENANT}:{key}"
            if item.counts:
                recorded.append((row, scoped, f"{item.platform}:{item.user_id}"))
            else:
                read.append((row, scoped))
        if recorded:
            observed = self.repeat_counter.observe([(key, sender) for _, key, sender in recorded])
            for (row, _, _), count in zip(recorded, observed, strict=True):
                counts[row] = count
        if read:
            seen = self.repeat_counter.peek([key for _, key in read])
            for (row, _), count in zip(read, seen, strict=True):
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
            ruleset.evaluate(item.text, text, repeat, item.history)
            for item, text, repeat in zip(items, normalized, repeats, strict=True)
        ]
        rule_per_category, rule_overall = rule_scores(hits)
        targets = target_features(normalized)
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

        started = time.perf_counter()
        profanity = self.profanity.probabilities(normalized)
        times.profanity = time.perf_counter() - started
        signals = Signals(
            rule_per_category,
            rule_overall,
            self.head.scores(vectors),
            neighbour_probs,
            profanity,
            targets,
        )
        base = self.blender.log_odds(signals)
        contributions = self.blender.contributions(signals)
        adjustment = self.examples.adjust(
            vectors, [item.tenant for item in items], base, self.blender.category_probs(signals)
        )
        contributions["examples"] = adjustment.shift
        # Runtime examples that acted come first: they are what moved the decision.
        shown = [
            (added + [n for n in reference if n.id not in {a.id for a in added}])[
                : max(config.shown_neighbours, len(added))
            ]
            for added, reference in zip(adjustment.shown, shown, strict=True)
        ]
        return Analysis(hits, signals, base, adjustment, contributions, shown, vectors)

    def screen(self, items: Sequence[ScreenItem]) -> list[Decision]:
        """Screen a batch and return one decision per item, in order."""
        if not items:
            return []
        analysis = self.analyse(items)
        started = time.perf_counter()
        scores = analysis.score(self.scoring, [item.platform for item in items])
        decisions = self._decisions(items, analysis, scores)
        self.times.score = time.perf_counter() - started
        self.times.add_to_totals()
        return decisions

    def _decisions(
        self, items: Sequence[ScreenItem], analysis: Analysis, scores: Scores
    ) -> list[Decision]:
        """Assemble the receipts of a scored batch."""
        hits, shown = analysis.hits, analysis.shown
        heuristic = analysis.signals.rule_overall
        embedding = analysis.embedding_score
        contributions = analysis.contributions
        now = datetime.now(UTC)
        version = self.version
        model = self.embedder.name
        decisions = []
        actions = self.scoring.actions
        for row, item in enumerate(items):
            named = CATEGORIES[int(scores.category[row])]
            high = bool(scores.high[row])
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
                    category=named,
                    category_scores=category_scores,
                    route="high" if high else "low",
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
                    heuristic_score=round(float(heuristic[row]), 4),
                    embedding_score=round(float(np.clip(embedding[row], 0.0, 1.0)), 4),
                    signals={
                        name: round(float(values[row]), 4) for name, values in contributions.items()
                    },
                    model=model,
                    version=version,
                    ingested_at=item.ingested_at,
                    screened_at=now,
                    action=actions.action(named, category_scores[named], high, item.platform),
                )
            )
        return decisions

    def add_examples(
        self,
        texts: Sequence[str],
        labels: Sequence[Category],
        ids: Sequence[str],
        tenant: str | None = None,
    ) -> None:
        """Add labelled examples now, without a rebuild: for one tenant's texts, or (None) all.
        An id the tenant's examples already hold takes the new label (a later moderator review
        supersedes an earlier one)."""
        if not len(texts) == len(labels) == len(ids):
            raise ValueError("texts, labels and ids differ in length")
        if not texts:
            return
        analysis = self.analyse([ScreenItem(text=text, tenant=tenant) for text in texts])
        self.examples.add(analysis.vectors, ids, labels, analysis.base_log_odds, tenant)
        self._added += len(texts)


def configured_embedder(settings: Settings) -> Embedder:
    """The embedding model the settings name, on their backend and device."""
    return load_embedder(
        settings.embed_model,
        settings.embed_backend,
        settings.embed_device,
        settings.embed_batch_size,
        settings.embed_threads,
        settings.model_dir,
    )


def load_engine(
    settings: Settings,
    client: redis.Redis | None = None,
    on_cache_lookup: Callable[[int, int], None] | None = None,
) -> ScreeningEngine:
    """Assemble the engine a worker runs: model, cache, rules, reference index, trained weights.

    Builds the reference index under settings.var_dir on first use (see artifacts); the head and
    blender are the trained weights in settings.trained_model_path (the shipped ones by default).
    Without a Redis client the engine runs with no embedding cache and no cross-event signal.
    `on_cache_lookup(hits, misses)` is told about every embedding-cache lookup (for metrics).
    """
    embedder = configured_embedder(settings)
    rules = RuleFile(settings.rules_path or DEFAULT_RULES_PATH, settings.rules_reload_s)
    reference = ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH)
    spec = IndexSpec(
        settings.reference_index,
        settings.reference_index_nlist,
        settings.reference_index_nprobe,
        settings.reference_index_ef_search,
    )
    artifacts = load_or_embed(settings.var_dir, embedder, reference, spec)
    bundle = ModelBundle.load(settings.trained_model_path or DEFAULT_MODEL_PATH)
    if bundle.examples is not None:  # the head and blender were trained with these neighbours
        extra = load_or_embed(settings.var_dir, embedder, bundle.examples)
        artifacts.index.add(extra.index.vectors(), bundle.examples.ids, bundle.examples.labels)
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
        head=bundle.head,
        blender=bundle.blender,
        profanity=bundle.profanity,
        rules=rules,
        scoring=ScoringConfig.load(settings.scoring_path or DEFAULT_SCORING_PATH),
        reference_digest=artifacts.reference_digest,
        repeat_counter=repeat_counter,
        model_version=bundle.version,
    )
