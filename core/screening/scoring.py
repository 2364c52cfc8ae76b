"""Scoring: blend rule scores with embedding scores, apply thresholds, pick category and route.

Everything here works on arrays of a whole batch, so the screening engine and the evaluation
run the very same arithmetic.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.models import CATEGORIES, Category
from core.screening.policy import ActionPolicy
from core.screening.rules import RuleHit

DEFAULT_SCORING_PATH = Path(__file__).parent / "data" / "scoring.toml"
LOW = CATEGORIES.index(Category.LOW_RISK)
# Harmful categories from the most to the least severe; the labelled data uses the same order
# when a text carries several labels.
SEVERITY = (
    Category.VIOLENCE,
    Category.SEXUAL,
    Category.HATE_SPEECH,
    Category.TARGETED_HARASSMENT,
    Category.TOXIC,
    Category.SPAM,
)
HARMFUL = np.array([CATEGORIES.index(c) for c in SEVERITY])

Matrix = npt.NDArray[np.float32]


class Thresholds(BaseModel):
    """Where a score turns an event high-risk: overall (`any`) and per category."""

    model_config = ConfigDict(extra="forbid")

    any: float = Field(0.5, ge=0, le=1, description="risk_score at or above this routes high")
    categories: dict[Category, float] = Field(default_factory=dict)


class ScoringConfig(BaseModel):
    """The blend weights, neighbour settings and thresholds, read from scoring.toml."""

    model_config = ConfigDict(extra="forbid")

    rules_weight: float = Field(0.6, ge=0, le=1)
    embedding_weight: float = Field(0.4, ge=0, le=1)
    head_weight: float = Field(1.0, ge=0, le=1, description="head vs neighbour votes")
    neighbours: int = Field(10, ge=1, le=100)
    neighbour_sharpness: float = Field(20.0, gt=0)
    shown_neighbours: int = Field(3, ge=0, le=20)
    severity_margin: float = Field(
        0.8, gt=0, le=1, description="a category within this share of the top score may win"
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    platforms: dict[str, Thresholds] = Field(default_factory=dict)
    actions: ActionPolicy = Field(default_factory=ActionPolicy)
    version: str = ""

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> ScoringConfig:
        """Keep risk_score in [0, 1]: the two blend weights must add up to 1."""
        if abs(self.rules_weight + self.embedding_weight - 1.0) > 1e-6:
            raise ValueError("rules_weight + embedding_weight must be 1")
        return self

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
    heuristic: Matrix  # (n,)
    embedding: Matrix  # (n,)
    category: npt.NDArray[np.int64]  # (n,) index into CATEGORIES
    high: npt.NDArray[np.bool_]  # (n,)


def score(
    config: ScoringConfig,
    *,
    rule_per_category: Matrix,
    rule_overall: Matrix,
    head_probs: Matrix,
    neighbour_probs: Matrix,
    platforms: Sequence[str | None],
) -> Scores:
    """Blend, threshold and decide a whole batch."""
    embedding_probs = config.head_weight * head_probs + (1.0 - config.head_weight) * neighbour_probs
    embedding = 1.0 - embedding_probs[:, LOW]
    risk = config.rules_weight * rule_overall + config.embedding_weight * embedding
    blended = config.rules_weight * rule_per_category + config.embedding_weight * embedding_probs
    blended[:, LOW] = 1.0 - risk
    overall_thresholds = np.empty(len(platforms), dtype=np.float32)
    category_thresholds = np.empty((len(platforms), len(CATEGORIES)), dtype=np.float32)
    for row, platform in enumerate(platforms):
        overall_thresholds[row], category_thresholds[row] = config.thresholds_for(platform)
    over_category = blended >= category_thresholds  # NaN (unset) compares False
    over_category[:, LOW] = False
    high = (risk >= overall_thresholds) | over_category.any(axis=1)
    # The most severe harmful category whose score is close to the best one names the event.
    harmful = blended[:, HARMFUL]
    close = harmful >= config.severity_margin * harmful.max(axis=1, keepdims=True)
    harmful_best = HARMFUL[np.argmax(close, axis=1)]
    category = np.where(high, harmful_best, LOW).astype(np.int64)
    return Scores(
        risk=np.clip(risk, 0.0, 1.0).astype(np.float32),
        category_scores=np.clip(blended, 0.0, 1.0).astype(np.float32),
        heuristic=rule_overall.astype(np.float32),
        embedding=embedding.astype(np.float32),
        category=category,
        high=high,
    )
