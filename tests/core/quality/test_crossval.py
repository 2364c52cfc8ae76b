"""Cross-validation helpers: few-shot samples are stratified, capped, seeded and nested; folds
always train on the augmentation."""

from __future__ import annotations

import numpy as np

from core.models import Category
from core.quality import crossval
from core.quality.crossval import adapt_sample
from core.quality.evaluation import LabelledTexts

LABELS = [Category.LOW_RISK] * 300 + [Category.SPAM] * 40 + [Category.TOXIC] * 5


def test_a_sample_takes_k_rows_of_each_label_at_most_half_of_a_label() -> None:
    chosen = adapt_sample(LABELS, 25)
    picked = [LABELS[i] for i in chosen]
    assert picked.count(Category.LOW_RISK) == 25
    assert picked.count(Category.SPAM) == 20  # half of 40
    assert picked.count(Category.TOXIC) == 2  # half of 5, rounded down


def test_samples_are_seeded_and_nested_in_k() -> None:
    small, large = adapt_sample(LABELS, 10), adapt_sample(LABELS, 50)
    assert np.array_equal(small, adapt_sample(LABELS, 10))
    assert set(small) <= set(large)
    assert not np.array_equal(small, adapt_sample(LABELS, 10, seed=1))


def test_k_zero_samples_nothing() -> None:
    assert len(adapt_sample(LABELS, 0)) == 0


def test_augmentation_is_trained_on_in_every_fold_and_never_a_fold_of_its_own() -> None:
    data = LabelledTexts(
        ["a1", "a2", "b1", "b2", "f1", "f2"],
        [Category.LOW_RISK, Category.SPAM] * 3,
        ["a", "a", "b", "b", "functional", "functional"],
    )
    augmentation = frozenset({"functional"})
    folds = crossval.leave_one_source_out(data, {"a", "b"}, augmentation)
    assert [f.name for f in folds] == ["a", "b"]
    for fold in folds:
        assert fold.train[4:].all()
        assert not (fold.train & fold.test).any()
    holdout = crossval.stratified_holdout(
        data, {"a", "b"}, test_share=0.5, augmentation=augmentation
    )
    assert holdout.train[4:].all() and not holdout.test[4:].any()
