"""Scoring: turn the blend's log-odds and category mix into scores, routes and categories.

risk_score = sigmoid(log-odds), where the blender's log-odds are shifted so that 0 is the cut-off
fitted on out-of-fold data: a risk_score of 0.5 is that operating point, and `thresholds.any`
(0.5 by default) moves it. Everything here works on arrays of a whole batch, so the screening
engine and the evaluation run the very same arithmetic.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError
from core.models import CATEGORIES, Category
from core.screening.blender import sigmoid
from core.screening.examples import ExamplesConfig
from core.screening.policy import ActionPolicy
from core.screening.rules import RuleHit

DEFAULT_SCORING_PATH = Path(__file__).parent / "data" / "scoring.toml"
LOW = CATEGORIES.index(Category.LOW_RISK)
HARMFUL = np.array([i for i, c in enumerate(CATEGORIES) if c is not Category.LOW_RISK])

Matrix = npt.NDArray[np.float32]


class Thresholds(BaseModel):
    """Where a score turns an event high-risk: overall (`any`) and per category."""

    model_config = ConfigDict(extra="forbid")

    any: float = Field(0.5, ge=0, le=1, description="risk_score at or above this routes high")
    categories: dict[Category, float] = Field(default_factory=dict)


class ScoringConfig(BaseModel):
    """Neighbour settings, thresholds and the runtime examples' settings, from scoring.toml."""

    model_config = ConfigDict(extra="forbid")

    neighbours: int = Field(10, ge=1, le=100)
    neighbour_sharpness: float = Field(20.0, gt=0)
    shown_neighbours: int = Field(3, ge=0, le=20)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    platforms: dict[str, Thresholds] = Field(default_factory=dict)
    examples: ExamplesConfig = Field(default_factory=ExamplesConfig)
    actions: ActionPolicy = Field(default_factory=ActionPolicy)
    version: str = ""

    @classmethod
    def load(cls, path: Path = DEFAULT_SCORING_PATH) -> ScoringConfig:
        """Read and validate a scoring file; its version is a hash of its bytes."""
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
            config = cls.model_validate(data)
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ConfigError(f"bad scoring file {path}: {exc}") from exc
        return config.model_copy(update={"version": hashlib.sha256(raw).hexdigest()[:12]})

    def thresholds_for(self, platform: str | None) -> tuple[float, Matrix]:
        """The overall threshold and the per-category ones (NaN where unset) for a platform."""
        overall = self.thresholds.any
        per = np.full(len(CATEGORIES), np.nan, dtype=np.float32)
        for category, value in self.thresholds.categories.items():
            per[CATEGORIES.index(category)] = value
        override = self.platforms.get(platform or "")
        if override is not None:
            overall = override.any if "any" in override.model_fields_set else overall
            for category, value in override.categories.items():
                per[CATEGORIES.index(category)] = value
        return overall, per


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
