"""Cross-validation helpers: few-shot samples are stratified, capped, seeded and nested."""

from __future__ import annotations

import numpy as np

from core.models import Category
from core.quality.crossval import adapt_sample

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
