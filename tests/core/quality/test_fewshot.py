"""Few-shot label sets: reviews are of flagged rows only, nested in their count."""

from __future__ import annotations

import numpy as np

from core.models import Category
from core.quality.fewshot import flagged_share, review_sample


def test_reviews_are_drawn_from_the_flagged_rows_only_and_nest_in_their_count() -> None:
    predicted = [Category.TOXIC if i % 3 == 0 else Category.LOW_RISK for i in range(300)]
    small, large = review_sample(predicted, 25), review_sample(predicted, 50)
    assert len(small) == 25 and len(large) == 50
    assert all(predicted[i] is Category.TOXIC for i in large)
    assert set(small) <= set(large)
    assert len(review_sample(predicted, 1000)) == 100  # no more than were flagged


def test_the_flagged_share_counts_every_harmful_category() -> None:
    labels = [Category.SPAM, Category.LOW_RISK, Category.SEXUAL, Category.LOW_RISK]
    assert flagged_share(labels) == 0.5
    assert np.isclose(flagged_share([Category.LOW_RISK]), 0.0)
