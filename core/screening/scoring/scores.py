"""Scores: turn the blend's log-odds and category mix into risk, category scores and routes.

risk_score = sigmoid(log-odds), where the blender's log-odds are shifted so that 0 is the cut-off
fitted on out-of-fold data: a risk_score of 0.5 is that operating point, and `thresholds.any`
(0.5 by default) moves it. Everything here works on arrays of a whole batch, so the screening
engine and the evaluation run the very same arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.models import CATEGORIES, Category
from core.screening.rules import RuleHit
from core.screening.scoring.arrays import LOW, Matrix, sigmoid
from core.screening.scoring.config import ScoringConfig

HARMFUL = np.array([i for i, c in enumerate(CATEGORIES) if c is not Category.LOW_RISK])


def rule_scores(hits: Sequence[Sequence[RuleHit]]) -> tuple[Matrix, Matrix]:
    """Per-category and overall rule scores: noisy-OR of the weights of the rules that fired."""
    per = np.zeros((len(hits), len(CATEGORIES)), dtype=np.float32)
    overall = np.zeros(len(hits), dtype=np.float32)
    for row, row_hits in enumerate(hits):
        miss = np.ones(len(CATEGORIES), dtype=np.float64)
        for hit in row_hits:
            miss[CATEGORIES.index(hit.category)] *= 1.0 - hit.weight
        per[row] = 1.0 - miss
        overall[row] = 1.0 - miss.prod()
    return per, overall


@dataclass(frozen=True)
class Scores:
    """The scores of a batch; row i belongs to event i."""

    risk: Matrix  # (n,)
    category_scores: Matrix  # (n, categories): LOW_RISK column is 1 - risk
    category: npt.NDArray[np.int64]  # (n,) index into CATEGORIES
    high: npt.NDArray[np.bool_]  # (n,)


def score(
    config: ScoringConfig,
    *,
    log_odds: Matrix,
    category_probs: Matrix,
    platforms: Sequence[str | None],
) -> Scores:
    """Threshold and decide a whole batch from its harmful log-odds and category mix."""
    risk = sigmoid(log_odds)
    category_scores = risk[:, None] * category_probs
    category_scores[:, LOW] = 1.0 - risk
    overall_thresholds = np.empty(len(platforms), dtype=np.float32)
    category_thresholds = np.empty((len(platforms), len(CATEGORIES)), dtype=np.float32)
    for row, platform in enumerate(platforms):
        overall_thresholds[row], category_thresholds[row] = config.thresholds_for(platform)
    over_category = category_scores >= category_thresholds  # NaN (unset) compares False
    over_category[:, LOW] = False
    high = (risk >= overall_thresholds) | over_category.any(axis=1)
    harmful = np.where(np.isin(np.arange(len(CATEGORIES)), HARMFUL), category_scores, -1.0)
    category = np.where(high, np.argmax(harmful, axis=1), LOW).astype(np.int64)
    return Scores(
        risk=np.clip(risk, 0.0, 1.0).astype(np.float32),
        category_scores=np.clip(category_scores, 0.0, 1.0).astype(np.float32),
        category=category,
        high=high,
    )
