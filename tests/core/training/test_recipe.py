"""The training recipe on small synthetic data: it learns, and its cut-off is fitted."""

from __future__ import annotations

import numpy as np

from core.models import CATEGORIES, Category
from core.screening.text.target import TARGET_FEATURES
from core.training.recipe import (
    AUGMENTATION_WEIGHT,
    THRESHOLD_GRID,
    TrainingData,
    balanced_weights,
    macro_f1,
    train,
)

LOW = CATEGORIES.index(Category.LOW_RISK)
SPAM = CATEGORIES.index(Category.SPAM)
TOXIC = CATEGORIES.index(Category.TOXIC)


def synthetic(
    sources: tuple[str, ...] = ("a", "b", "c"), per_source: int = 120, augmented: str = ""
) -> TrainingData:
    """Three labels in separable directions of a 12-d space, spread over sources."""
    rng = np.random.default_rng(0)
    centres = np.eye(12, dtype=np.float32)[[0, 1, 2]] * 3
    labels = np.tile([LOW, SPAM, TOXIC], per_source * len(sources) // 3)
    vectors = centres[np.tile([0, 1, 2], per_source * len(sources) // 3)]
    vectors = vectors + rng.normal(0, 0.6, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(labels)
    rules = np.zeros((n, len(CATEGORIES)), np.float32)
    rules[labels == SPAM, SPAM] = 0.45  # a rule that fires on the spam rows
    return TrainingData(
        vectors.astype(np.float32),
        labels.astype(np.int64),
        np.repeat(np.array(sources), per_source),
        rules,
        rules.max(axis=1),
        np.where(labels == TOXIC, 0.9, 0.1).astype(np.float32),
        np.repeat(np.array(sources), per_source) == augmented,
        np.zeros((n, len(TARGET_FEATURES)), np.float32),
    )


def test_the_recipe_learns_separable_data_and_fits_its_cut_off() -> None:
    data = synthetic()
    model = train(data)
    assert model.blender.threshold in THRESHOLD_GRID
    assert model.metrics["out_of_fold_mean_macro_f1"] > 0.95
    scores = model.head.scores(data.vectors)
    assert (scores.argmax(axis=1) == data.labels).mean() > 0.95


def test_one_source_falls_back_to_two_random_halves() -> None:
    model = train(synthetic(sources=("only",)))
    assert set(model.metrics["out_of_fold_macro_f1"]) == {"half0", "half1"}


def test_an_augmentation_source_teaches_but_never_picks_the_cut_off() -> None:
    data = synthetic(sources=("a", "b", "c", "suite"), augmented="suite")
    model = train(data)
    per_source = model.metrics["out_of_fold_macro_f1"]
    assert "suite" in per_source
    real = [per_source[name] for name in ("a", "b", "c")]
    assert model.metrics["out_of_fold_mean_macro_f1"] == round(float(np.mean(real)), 4)
    assert model.metrics["augmented_rows"] == 120
    assert data.source_weights() == {"a": 1.0, "b": 1.0, "c": 1.0, "suite": AUGMENTATION_WEIGHT}


def test_balanced_weights_scale_a_group_by_its_weight() -> None:
    groups = np.array(["a"] * 90 + ["b"] * 12)
    truth = np.array([True] * 30 + [False] * 60 + [True] * 4 + [False] * 8)
    weights = balanced_weights(groups, truth, {"b": 0.5})
    assert np.isclose(weights[groups == "a"].sum(), 2 * weights[groups == "b"].sum())


def test_balanced_weights_give_each_source_and_class_the_same_weight() -> None:
    groups = np.array(["a"] * 90 + ["b"] * 12)  # both a third harmful
    truth = np.array([True] * 30 + [False] * 60 + [True] * 4 + [False] * 8)
    weights = balanced_weights(groups, truth)
    assert np.isclose(weights[groups == "a"].sum(), weights[groups == "b"].sum())
    assert np.isclose(weights[truth].sum(), weights[~truth].sum())


def test_macro_f1_counts_the_class_that_is_present() -> None:
    truth = np.array([False, False, False])
    assert macro_f1(truth, np.array([False, False, True])) == 0.8
    both = np.array([True, False])
    assert macro_f1(both, both) == 1.0
