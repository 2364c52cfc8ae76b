"""Held-out and leave-one-source-out evaluation of the real engine, without re-embedding.

Every text is embedded once (and the vectors cached on disk); each fold then builds its own
reference index and head from the training rows' vectors and screens the test rows through the
very same ScreeningEngine.screen the workers run, with an embedder that looks vectors up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.models import CATEGORIES, Category
from core.quality.evaluation import LabelledTexts, binary_metrics
from core.screening.artifacts import embed_reference, train_head
from core.screening.embedding import Embedder
from core.screening.embedding.cache import normalise_text
from core.screening.engine import Analysis, ScreeningEngine, ScreenItem
from core.screening.head import LinearHead
from core.screening.normalize import normalize
from core.screening.reference import ReferenceIndex, ReferenceSet
from core.screening.rules import RuleFile
from core.screening.scoring import ScoringConfig

log = structlog.get_logger(__name__)

CATEGORY_NAMES = [category.value for category in CATEGORIES]

Vectors = npt.NDArray[np.float32]
BATCH = 100


class LookupEmbedder:
    """An Embedder serving vectors computed beforehand; other texts go to `fallback`."""

    def __init__(self, embedder: Embedder, texts: Sequence[str], vectors: Vectors) -> None:
        self.fallback = embedder
        self.name = embedder.name
        self.dim = int(vectors.shape[1])
        self._rows = {normalise_text(normalize(text)): row for row, text in enumerate(texts)}
        self._vectors = vectors

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Stored vectors where known, freshly encoded ones for the rest."""
        keys = [normalise_text(text) for text in texts]
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


def leave_one_source_out(data: LabelledTexts, trainable: set[str]) -> list[Fold]:
    """One fold per source: train on the trainable sources but that one, test on it."""
    sources = np.array(data.sources)
    allowed = np.isin(sources, sorted(trainable))
    return [
        Fold(name, allowed & (sources != name), sources == name)
        for name in sorted(set(data.sources))
    ]


def stratified_holdout(
    data: LabelledTexts, trainable: set[str], test_share: float = 0.2, seed: int = 0
) -> Fold:
    """A fixed random split of the trainable sources, stratified by source and label."""
    rng = np.random.default_rng(seed)
    sources = np.array(data.sources)
    labels = np.array([label.value for label in data.labels])
    test = np.zeros(len(data), dtype=bool)
    allowed = np.isin(sources, sorted(trainable))
    for source in sorted(trainable):
        for label in sorted(set(labels[sources == source])):
            rows = np.flatnonzero((sources == source) & (labels == label))
            rng.shuffle(rows)
            test[rows[: round(len(rows) * test_share)]] = True
    return Fold("holdout", allowed & ~test, test)


def fold_engine(
    fold: Fold,
    data: LabelledTexts,
    embedder: LookupEmbedder,
    rules: RuleFile,
    scoring: ScoringConfig,
) -> ScreeningEngine:
    """An engine whose reference index and head know only the fold's training rows."""
    rows = np.flatnonzero(fold.train)
    reference = ReferenceSet(
        [f"row:{i}" for i in rows],
        [data.texts[i] for i in rows],
        [data.labels[i] for i in rows],
        [data.sources[i] for i in rows],
    )
    vectors = embedder.encode([normalize(text) for text in reference.texts])
    head: LinearHead = train_head(vectors, reference, rules.current())
    index = ReferenceIndex(vectors, reference.ids, reference.labels)
    return ScreeningEngine(
        embedder,
        index=index,
        head=head,
        rules=rules,
        scoring=scoring,
        reference_digest=f"fold:{fold.name}",
    )


def screen_all(
    engine: ScreeningEngine, texts: Sequence[str], progress: Callable[[int], None] | None = None
) -> list[Category]:
    """The engine's category for every text, screened in batches of 100 as workers do."""
    found: list[Category] = []
    for start in range(0, len(texts), BATCH):
        batch = [ScreenItem(text=text) for text in texts[start : start + BATCH]]
        found += [decision.category for decision in engine.screen(batch)]
        if progress:
            progress(len(found))
    return found


def run_fold(
    fold: Fold,
    data: LabelledTexts,
    embedder: LookupEmbedder,
    rules: RuleFile,
    scoring: ScoringConfig,
) -> tuple[LabelledTexts, list[Category]]:
    """Train on the fold's training rows, then screen its test rows."""
    engine = fold_engine(fold, data, embedder, rules, scoring)
    test = data.select(fold.test)
    predicted = screen_all(engine, test.texts)
    log.info("fold_done", fold=fold.name, train=int(fold.train.sum()), test=len(test))
    return test, predicted


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Mean binary accuracy and macro-F1 over folds (each fold counts once)."""
    return {
        "mean_accuracy": round(
            float(np.mean([r["binary"]["accuracy"] for r in results.values()])), 4
        ),
        "mean_macro_f1": round(
            float(np.mean([r["binary"]["macro_f1"] for r in results.values()])), 4
        ),
    }


def tune(
    folds: Sequence[tuple[LabelledTexts, Analysis]],
    base: ScoringConfig,
    rules_weights: Sequence[float] = (0.4, 0.5, 0.6, 0.7, 0.8),
    head_weights: Sequence[float] = (1.0, 0.7, 0.5),
    thresholds: Sequence[float] = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5),
) -> list[tuple[float, float, ScoringConfig]]:
    """Score every blend on the folds' analyses; best mean binary macro-F1 first."""
    results = []
    for rules_weight in rules_weights:
        for head_weight in head_weights:
            for threshold in thresholds:
                config = base.model_copy(
                    update={
                        "rules_weight": rules_weight,
                        "embedding_weight": round(1.0 - rules_weight, 6),
                        "head_weight": head_weight,
                        "thresholds": base.thresholds.model_copy(update={"any": threshold}),
                    }
                )
                f1s, accuracies = [], []
                for test, analysis in folds:
                    scores = analysis.score(config, [None] * len(test))
                    metrics = binary_metrics(test.harmful(), scores.high)
                    f1s.append(metrics["macro_f1"])
                    accuracies.append(metrics["accuracy"])
                results.append((float(np.mean(f1s)), float(np.mean(accuracies)), config))
    results.sort(key=lambda row: (-row[0], -row[1]))
    return results


def analyse_fold(
    fold: Fold,
    data: LabelledTexts,
    embedder: LookupEmbedder,
    rules: RuleFile,
    scoring: ScoringConfig,
) -> tuple[LabelledTexts, Analysis]:
    """The score parts of a fold's test rows, for tuning the blend without re-running rules."""
    engine = fold_engine(fold, data, embedder, rules, scoring)
    test = data.select(fold.test)
    parts = [
        engine.analyse([ScreenItem(text=t) for t in test.texts[start : start + BATCH]])
        for start in range(0, len(test), BATCH)
    ]
    return test, Analysis(
        [hits for part in parts for hits in part.hits],
        np.concatenate([part.rule_per_category for part in parts]),
        np.concatenate([part.rule_overall for part in parts]),
        np.concatenate([part.head_probs for part in parts]),
        np.concatenate([part.neighbour_probs for part in parts]),
        [shown for part in parts for shown in part.shown],
    )
