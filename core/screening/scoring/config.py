"""The scoring configuration (scoring.toml): neighbours, thresholds, runtime examples, actions."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError
from core.models import CATEGORIES, Category
from core.screening.scoring.arrays import Matrix
from core.screening.scoring.examples import ExamplesConfig
from core.screening.scoring.policy import ActionPolicy

DEFAULT_SCORING_PATH = Path(__file__).parents[1] / "data" / "scoring.toml"


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
