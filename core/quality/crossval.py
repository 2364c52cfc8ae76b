"""Held-out and leave-one-source-out evaluation of the real engine, without re-embedding.

Every text is embedded once (and the vectors cached on disk), and the rules and the profanity
model run once per text; each fold then trains the real recipe (`core.training.recipe`) on
its training rows only, builds its own reference index, and screens its test rows through the
very same `ScreeningEngine.analyse` and scoring the workers run, with an embedder that looks
vectors up. Few-shot curves reuse a fold's analysis: runtime examples adjust it exactly as in
`ScreeningEngine.screen`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from core.models import CATEGORIES, Category
from core.quality.evaluation import LabelledTexts
from core.quality.functional import Suite
from core.screening.embedding import Embedder
from core.screening.embedding.cache import embedded_form
from core.screening.engine import Analysis, ScreeningEngine, ScreenItem
from core.screening.reference.dataset import ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.reference.vectors import embed_reference
from core.screening.rules import RuleFile
from core.screening.scoring.config import ScoringConfig
from core.screening.scoring.examples import RuntimeExamples
from core.screening.scoring.profanity import ProfanityModel
from core.screening.scoring.scores import score
from core.screening.text.normalization import normalize
from core.training.recipe import TrainingData, train

log = structlog.get_logger(__name__)

Vectors = npt.NDArray[np.float32]
BATCH = 100
ADAPT_TENANT = "adapt"


class LookupEmbedder:
    """An Embedder serving vectors computed beforehand; other texts go to `fallback`."""

    def __init__(self, embedder: Embedder, texts: Sequence[str], vectors: Vectors) -> None:
        self.fallback = embedder
        self.name = embedder.name
        self.dim = int(vectors.shape[1])
        self._rows = {embedded_form(normalize(text)): row for row, text in enumerate(texts)}
        self._vectors = vectors

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Stored vectors where known, freshly encoded ones for the rest."""
        keys = [embedded_form(text) for text in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        known = [i for i, key in enumerate(keys) if key in self._rows]
        if known:
            out[known] = self._vectors[[self._rows[keys[i]] for i in known]]
        if missing:
            out[missing] = self.fallback.encode([texts[i] for i in missing])
        return out


def cached_vectors(embedder: Embedder, data: LabelledTexts, cache_dir: Path) -> Vectors:
    """Embed every text once per (model, normalised texts); later runs read them from disk."""
    # Hashing the normalised texts means a change to normalisation invalidates the cache too.
    normalized = "\x1e".join(normalize(text) for text in data.texts)
    digest = hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
    safe_name = embedder.name.replace("/", "_")
    path = cache_dir / f"vectors-{safe_name}-{digest}.npy"
    if path.exists():
        vectors: Vectors = np.load(path)
        return vectors
    reference = ReferenceSet([str(i) for i in range(len(data))], data.texts, data.labels)
    vectors = embed_reference(embedder, reference)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        np.save(handle, vectors)
    temporary.replace(path)
    return vectors


@dataclass
class Fold:
    """One train/test split of the labelled data."""

    name: str
    train: npt.NDArray[np.bool_]
    test: npt.NDArray[np.bool_]


def leave_one_source_out(
    data: LabelledTexts, trainable: set[str], augmentation: frozenset[str] = frozenset()
) -> list[Fold]:
    """One fold per source: train on the trainable sources but that one, test on it.

    Augmentation sources are always trained on and never a fold of their own.
    """
    sources = np.array(data.sources)
    allowed = np.isin(sources, sorted(trainable | augmentation))
    return [
        Fold(name, allowed & (sources != name), sources == name)
        for name in sorted(set(data.sources) - augmentation)
    ]


def stratified_holdout(
    data: LabelledTexts,
    trainable: set[str],
    test_share: float = 0.2,
    seed: int = 0,
    augmentation: frozenset[str] = frozenset(),
) -> Fold:
    """A fixed random split of the trainable sources, stratified by source and label.

    Augmentation sources are trained on whole.
    """
    rng = np.random.default_rng(seed)
    sources = np.array(data.sources)
    labels = np.array([label.value for label in data.labels])
    test = np.zeros(len(data), dtype=bool)
    allowed = np.isin(sources, sorted(trainable | augmentation))
    for source in sorted(trainable):
        for label in sorted(set(labels[sources == source])):
            rows = np.flatnonzero((sources == source) & (labels == label))
            rng.shuffle(rows)
            test[rows[: round(len(rows) * test_share)]] = True
    return Fold("holdout", allowed & ~test, test)


def as_reference(data: LabelledTexts, rows: npt.NDArray[np.int64] | None = None) -> ReferenceSet:
    """Rows of labelled texts as a reference set (ids are row numbers)."""
    chosen = np.arange(len(data)) if rows is None else rows
    return ReferenceSet(
        [f"row:{i}" for i in chosen],
        [data.texts[i] for i in chosen],
        [data.labels[i] for i in chosen],
        [data.sources[i] for i in chosen],
    )


def with_training_frames(
    embedder: Embedder, data: LabelledTexts, vectors: Vectors, cache_dir: Path
) -> tuple[LabelledTexts, Vectors]:
    """The labelled texts followed by the functional suite's train-template cases.

    `make model` trains on the same cases (source `functional`), so every fold does too.
    """
    frames = Suite.load().training_frames()
    joined = LabelledTexts(
        data.texts + frames.texts, data.labels + frames.labels, data.sources + frames.sources
    )
    return joined, np.vstack([vectors, cached_vectors(embedder, frames, cache_dir)])


def prepare(
    data: LabelledTexts,
    vectors: Vectors,
    rules: RuleFile,
    profanity: ProfanityModel,
    augmentation: frozenset[str] = frozenset(),
) -> TrainingData:
    """Rules and profanity of every text, once, for every fold's training."""
    augmented = np.isin(np.array(data.sources), sorted(augmentation))
    return TrainingData.prepare(as_reference(data), vectors, rules.current(), profanity, augmented)


def fold_engine(
    fold: Fold,
    data: LabelledTexts,
    prepared: TrainingData,
    *,
    embedder: LookupEmbedder,
    profanity: ProfanityModel,
    rules: RuleFile,
    scoring: ScoringConfig,
) -> ScreeningEngine:
    """An engine whose head, blender and reference index know only the fold's training rows."""
    rows = np.flatnonzero(fold.train)
    model = train(prepared.select(rows))
    reference = as_reference(data, rows)
    return ScreeningEngine(
        embedder,
        index=ReferenceIndex(prepared.vectors[rows], reference.ids, reference.labels),
        head=model.head,
        blender=model.blender,
        profanity=profanity,
        rules=rules,
        scoring=scoring,
        reference_digest=f"fold:{fold.name}",
        model_version=f"fold:{fold.name}",
    )


def analyse_all(
    engine: ScreeningEngine, texts: Sequence[str], tenant: str | None = None
) -> Analysis:
    """The engine's analysis of every text, in batches of 100 as workers screen them."""
    parts = [
        engine.analyse([ScreenItem(text=t, tenant=tenant) for t in texts[start : start + BATCH]])
        for start in range(0, len(texts), BATCH)
    ]
    return Analysis(
        [hits for part in parts for hits in part.hits],
        type(parts[0].signals)(
            *(
                np.concatenate([getattr(p.signals, name) for p in parts])
                for name in type(parts[0].signals).__dataclass_fields__
            )
        ),
        np.concatenate([p.base_log_odds for p in parts]),
        type(parts[0].adjustment)(
            np.concatenate([p.adjustment.log_odds for p in parts]),
            np.concatenate([p.adjustment.category_probs for p in parts]),
            np.concatenate([p.adjustment.shift for p in parts]),
            [shown for p in parts for shown in p.adjustment.shown],
        ),
        {
            name: np.concatenate([p.contributions[name] for p in parts])
            for name in parts[0].contributions
        },
        [shown for p in parts for shown in p.shown],
        np.concatenate([p.vectors for p in parts]),
    )


def categories(engine: ScreeningEngine, analysis: Analysis) -> list[Category]:
    """The category the engine names for each analysed text."""
    scores = analysis.score(engine.scoring, [None] * len(analysis.base_log_odds))
    return [CATEGORIES[int(i)] for i in scores.category]


def screen_all(engine: ScreeningEngine, texts: Sequence[str]) -> list[Category]:
    """The engine's category for every text, screened in batches of 100 as workers do."""
    found: list[Category] = []
    for start in range(0, len(texts), BATCH):
        batch = [ScreenItem(text=text) for text in texts[start : start + BATCH]]
        found += [decision.category for decision in engine.screen(batch)]
    return found


def adapt_sample(
    labels: Sequence[Category], k: int, seed: int = 0, cap: float = 0.5
) -> npt.NDArray[np.int64]:
    """Up to k rows per label (never more than `cap` of a label's rows), seeded; nested in k."""
    rng = np.random.default_rng(seed)
    names = np.array([label.value for label in labels])
    chosen = []
    for name in sorted(set(names.tolist())):
        rows = np.flatnonzero(names == name)
        chosen.append(rng.permutation(rows)[: min(k, int(len(rows) * cap))])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def adapted(
    engine: ScreeningEngine,
    analysis: Analysis,
    examples: npt.NDArray[np.int64],
    labels: Sequence[Category],
    *,
    rows: npt.NDArray[np.int64],
    tenant: str = ADAPT_TENANT,
) -> list[Category]:
    """Categories of `rows` after adding the `examples` rows as one tenant's runtime examples.

    The same arithmetic as `add_examples` followed by `screen` for that tenant's texts, applied
    to one analysis of every text, so a whole curve costs one screening pass.
    """
    runtime = RuntimeExamples(engine.embedder.dim, engine.scoring.examples)
    runtime.add(
        analysis.vectors[examples],
        [f"example:{i}" for i in examples],
        [labels[i] for i in examples],
        analysis.base_log_odds[examples],
        tenant,
    )
    tenants: list[str | None] = [tenant] * len(rows)
    adjustment = runtime.adjust(
        analysis.vectors[rows],
        tenants,
        analysis.base_log_odds[rows],
        analysis.adjustment.category_probs[rows],
    )
    scores = score(
        engine.scoring,
        log_odds=adjustment.log_odds,
        category_probs=adjustment.category_probs,
        platforms=[None] * len(rows),
    )
    return [CATEGORIES[int(i)] for i in scores.category]
