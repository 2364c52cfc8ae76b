"""The training recipe: ridge head, blender and category model from labelled, embedded texts.

What generalises to sources we have no data from is what is rewarded: the blender is fit on
leave-one-source-out signals (for each source, a head and a neighbour index built from the other
sources only), so it learns how far to trust each signal on unseen kinds of traffic rather than
on texts the head has already seen. The cut-off is the one that maximises the mean per-source
binary macro-F1 of those out-of-fold rows. `make model` runs this on the shipped reference set;
`make eval` runs it inside every fold, on that fold's training rows only.

Both add the same augmentation: rows written for training (the functional suite's train
templates), marked `augmented`. They teach the head, the blender and the category model as one
more source of weight AUGMENTATION_WEIGHT and are neighbours like any example (the shipped
bundle carries them and the engine adds them to its reference index), but play no part in the
choice of the cut-off, which is the real sources' business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.models import CATEGORIES
from core.screening.reference.dataset import ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.rules import RuleSet
from core.screening.scoring.arrays import HARMFUL_COLUMNS, LOW
from core.screening.scoring.blender import Blender, Signals
from core.screening.scoring.head import HeadStatistics, LinearHead
from core.screening.scoring.profanity import ProfanityModel
from core.screening.scoring.scores import rule_scores
from core.screening.text.normalization import normalize
from core.screening.text.target import target_features
from core.training.categories import label_sets, softmax_fit

log = structlog.get_logger(__name__)

SEED = 0
HEAD_REGULARISATION = 1e-2
BLENDER_REGULARISATION = 1.0
# Out-of-fold rows per source for the blender: it has a dozen weights, so a few thousand rows of
# each source pin them down, and the neighbour searches stay cheap.
ROWS_PER_SOURCE = 1000
# Harmful rows per category and random half for the category model.
CATEGORY_ROWS = 600
NEIGHBOURS = 10
SHARPNESS = 20.0
THRESHOLD_GRID = np.round(np.linspace(0.2, 0.8, 61), 3)
# The weight of an augmentation source against a real one (each real source weighs 1).
AUGMENTATION_WEIGHT = 1.0

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TrainingData:
    """Labelled texts with everything the recipe needs per row, computed once."""

    vectors: Vectors
    labels: npt.NDArray[np.int64]
    sources: npt.NDArray[np.str_]
    rule_per_category: Vectors
    rule_overall: Vectors
    profanity: Vectors
    augmented: npt.NDArray[np.bool_]  # rows written for training, not taken from a source
    targets: Vectors  # whom each text is aimed at (core.screening.text.target)

    @classmethod
    def prepare(
        cls,
        reference: ReferenceSet,
        vectors: Vectors,
        rules: RuleSet,
        profanity: ProfanityModel,
        augmented: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
    ) -> TrainingData:
        """Run the rules, the profanity model and the target cues over the (normalised) texts."""
        normalized = [normalize(text) for text in reference.texts]
        hits = [
            rules.evaluate(text, norm)
            for text, norm in zip(reference.texts, normalized, strict=True)
        ]
        per_category, overall = rule_scores(hits)
        return cls(
            np.ascontiguousarray(vectors, dtype=np.float32),
            reference.label_indices(),
            np.asarray(reference.sources or ["reference"] * len(reference)),
            per_category,
            overall,
            profanity.probabilities(normalized),
            np.zeros(len(reference), dtype=bool) if augmented is None else np.asarray(augmented),
            target_features(normalized),
        )

    def select(self, rows: npt.NDArray[np.int64]) -> TrainingData:
        """Some rows of the data."""
        return TrainingData(
            self.vectors[rows],
            self.labels[rows],
            self.sources[rows],
            self.rule_per_category[rows],
            self.rule_overall[rows],
            self.profanity[rows],
            self.augmented[rows],
            self.targets[rows],
        )

    def source_weights(self) -> dict[str, float]:
        """Each source's weight in every fit: 1, or AUGMENTATION_WEIGHT for augmentation."""
        augmented = set(self.sources[self.augmented].tolist())
        return {
            name: AUGMENTATION_WEIGHT if name in augmented else 1.0
            for name in set(self.sources.tolist())
        }


@dataclass(frozen=True)
class TrainedModel:
    """A head and a blender that belong together, and how the blend did out of fold."""

    head: LinearHead
    blender: Blender
    metrics: dict[str, Any]


def neighbour_signals(
    index: ReferenceIndex, queries: Vectors, k: int = NEIGHBOURS, sharpness: float = SHARPNESS
) -> Vectors:
    """Neighbour votes of the queries over an index."""
    sims, positions = index.search(queries, k)
    return index.votes(sims, positions, sharpness)


def _groups(data: TrainingData, seed: int) -> npt.NDArray[np.str_]:
    """Folds for the out-of-fold signals: the sources, or two random halves if only one."""
    if len(set(data.sources.tolist())) >= 2:
        return data.sources
    halves = np.random.default_rng(seed).integers(0, 2, len(data.sources))
    return np.array([f"half{h}" for h in halves])


def _held_out_signals(
    data: TrainingData, head: LinearHead, others: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> Signals:
    """Signals of `rows` from a head fit on `others` and a reference index of `others` only."""
    index = ReferenceIndex(
        data.vectors[others],
        [str(i) for i in others],
        [CATEGORIES[i] for i in data.labels[others]],
    )
    part = data.select(rows)
    return Signals(
        part.rule_per_category,
        part.rule_overall,
        head.scores(part.vectors),
        neighbour_signals(index, part.vectors),
        part.profanity,
        part.targets,
    )


def out_of_fold(
    data: TrainingData, seed: int = SEED, rows_per_source: int = ROWS_PER_SOURCE
) -> tuple[npt.NDArray[np.int64], Signals]:
    """Signals of a sample of each group's rows from a head and index without that group."""
    groups = _groups(data, seed)
    stats = HeadStatistics(data.vectors, data.labels, groups.tolist(), len(CATEGORIES))
    rng = np.random.default_rng(seed)
    chosen, parts = [], []
    for group in stats.sources:
        rows = np.flatnonzero(groups == group)
        rows = np.sort(rng.permutation(rows)[:rows_per_source])
        others = np.flatnonzero(groups != group)
        head = stats.solve(
            [g for g in stats.sources if g != group], HEAD_REGULARISATION, _weights(data, groups)
        )
        parts.append(_held_out_signals(data, head, others, rows))
        chosen.append(rows)
        log.info("out_of_fold_signals", group=group, rows=len(rows))
    return np.concatenate(chosen), _stack(parts)


def category_signals(
    data: TrainingData, seed: int = SEED, rows_per_category: int = CATEGORY_ROWS
) -> tuple[npt.NDArray[np.int64], Signals]:
    """Signals of harmful rows from a head and index built on the other random half.

    Each category comes mostly from one source (SEXUAL only from openai_moderation), so leaving
    sources out would hide the category itself from the head; a random split keeps every
    category on both sides, which is what naming the category needs.
    """
    rng = np.random.default_rng(seed + 1)
    half = rng.integers(0, 2, len(data.labels))
    chosen, parts = [], []
    for side in (0, 1):
        others = np.flatnonzero(half != side)
        stats = HeadStatistics(
            data.vectors[others],
            data.labels[others],
            data.sources[others].tolist(),
            len(CATEGORIES),
        )
        head = stats.solve(stats.sources, HEAD_REGULARISATION, data.source_weights())
        rows = np.sort(
            np.concatenate(
                [
                    rng.permutation(np.flatnonzero((half == side) & (data.labels == label)))[
                        :rows_per_category
                    ]
                    for label in HARMFUL_COLUMNS
                ]
            )
        )
        parts.append(_held_out_signals(data, head, others, rows))
        chosen.append(rows)
    return np.concatenate(chosen), _stack(parts)


def _stack(parts: Sequence[Signals]) -> Signals:
    """Signals of several batches as one."""
    return Signals(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Signals.__dataclass_fields__)
    )


def macro_f1(truth: npt.NDArray[np.bool_], flagged: npt.NDArray[np.bool_]) -> float:
    """Mean F1 of the harmful and the LOW_RISK class (of the one present, if only one is)."""

    def f1(actual: npt.NDArray[np.bool_], predicted: npt.NDArray[np.bool_]) -> float:
        hits = float(np.sum(actual & predicted))
        return 2 * hits / max(1.0, float(actual.sum() + predicted.sum()))

    if truth.all():
        return f1(truth, flagged)
    if not truth.any():
        return f1(~truth, ~flagged)
    return (f1(truth, flagged) + f1(~truth, ~flagged)) / 2


def _weights(data: TrainingData, groups: npt.NDArray[np.str_]) -> dict[str, float]:
    """The weight of each fold group: its source's (the random halves of one source weigh 1)."""
    of_source = data.source_weights()
    return {str(g): of_source.get(str(g), 1.0) for g in set(groups.tolist())}


def balanced_weights(
    groups: npt.NDArray[np.str_],
    truth: npt.NDArray[np.bool_],
    group_weights: Mapping[str, float] | None = None,
) -> Vectors:
    """Every group the same total weight (or its share of `group_weights`), and harmful and
    benign rows half of it each overall."""
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    scale = np.array(
        [1.0 if group_weights is None else group_weights.get(str(n), 1.0) for n in names]
    )
    weights = scale[inverse] / counts[inverse]
    share = float(np.average(truth, weights=weights))
    if 0.0 < share < 1.0:
        weights = weights * np.where(truth, 0.5 / share, 0.5 / (1.0 - share))
    result: Vectors = (weights * len(weights) / weights.sum()).astype(np.float32)
    return result


def fit_categories(
    rows: npt.NDArray[np.int64], signals: Signals, data: TrainingData
) -> tuple[Vectors, Vectors]:
    """The category model: softmax weights over the harmful categories, source-balanced, each
    row asking for its label set (core.training.categories)."""
    groups = data.sources[rows]
    weights = balanced_weights(groups, np.zeros(len(rows), bool), data.source_weights())
    labelled = {
        category: set(data.sources[data.labels == category].tolist())
        for category in HARMFUL_COLUMNS
    }
    allowed = label_sets(data.labels[rows], groups, data.targets[rows], labelled)
    return softmax_fit(signals.category_features(), allowed, weights, BLENDER_REGULARISATION)


def fit_blender(
    signals: Signals,
    labels: npt.NDArray[np.int64],
    groups: npt.NDArray[np.str_],
    data_for_categories: TrainingData,
    augmented: npt.NDArray[np.bool_] | None = None,
) -> tuple[Blender, dict[str, float]]:
    """Fit the blend and its cut-off on out-of-fold signals, and the category model.

    Rows marked `augmented` weigh AUGMENTATION_WEIGHT as a group and play no part in the cut-off.
    """
    from sklearn.linear_model import LogisticRegression

    truth = labels != LOW
    features = signals.binary_features()
    binary = LogisticRegression(C=BLENDER_REGULARISATION, max_iter=2000)
    extra = np.zeros(len(truth), dtype=bool) if augmented is None else augmented
    group_weights = {
        str(g): AUGMENTATION_WEIGHT if extra[groups == g].all() else 1.0
        for g in set(groups.tolist())
    }
    binary.fit(features, truth, sample_weight=balanced_weights(groups, truth, group_weights))
    probability = binary.predict_proba(features)[:, 1]
    names = sorted(set(groups[~extra].tolist()))

    def mean_f1(cut: float) -> float:
        return float(
            np.mean([macro_f1(truth[groups == g], probability[groups == g] >= cut) for g in names])
        )

    threshold = max(THRESHOLD_GRID, key=mean_f1)
    category_weights, category_bias = fit_categories(
        *category_signals(data_for_categories), data_for_categories
    )
    blender = Blender(
        binary.coef_[0].astype(np.float32),
        float(binary.intercept_[0]),
        float(threshold),
        category_weights,
        category_bias,
    )
    per_group = {g: round(macro_f1(truth[groups == g], probability[groups == g] >= threshold), 4)
                 for g in sorted(set(groups.tolist()))}  # fmt: skip
    return blender, per_group


def train(data: TrainingData, seed: int = SEED) -> TrainedModel:
    """The whole recipe: out-of-fold signals, the blender on them, the head on everything."""
    rows, signals = out_of_fold(data, seed)
    groups = _groups(data, seed)[rows]
    blender, per_group = fit_blender(signals, data.labels[rows], groups, data, data.augmented[rows])
    stats = HeadStatistics(data.vectors, data.labels, data.sources.tolist(), len(CATEGORIES))
    head = stats.solve(stats.sources, HEAD_REGULARISATION, data.source_weights())
    extra = set(data.sources[data.augmented].tolist())
    real = [f1 for group, f1 in per_group.items() if group not in extra]
    metrics = {
        "out_of_fold_macro_f1": per_group,
        "out_of_fold_mean_macro_f1": round(float(np.mean(real)), 4),
        "threshold": blender.threshold,
        "rows": len(data.labels),
        "augmented_rows": int(data.augmented.sum()),
        "augmentation_weight": AUGMENTATION_WEIGHT,
        "rows_per_label": {
            category.value: int(np.sum(data.labels == i)) for i, category in enumerate(CATEGORIES)
        },
    }
    return TrainedModel(head, blender, metrics)
