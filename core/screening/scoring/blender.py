"""The blender: one logistic model over every signal, and a category model for harmful texts.

The signals are the rules (per-category noisy-OR scores), the ridge head and the neighbours'
votes over the embedding, and alt-profanity-check's probability; the category model also reads
whom the text is aimed at (`core.screening.text.target`). Both models are linear, so the
harmful log-odds of a text is exactly a sum of one term per signal plus a bias: that sum is what
a decision's `signals` receipt shows. Fitting (scikit-learn, at training time only) happens in
`core.training` on out-of-fold signals; prediction here is numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.models import CATEGORIES, HARMFUL_CATEGORIES
from core.screening.scoring.arrays import HARMFUL_COLUMNS, LOW, Matrix, logit
from core.screening.text.target import TARGET_FEATURES

# Which signal each binary feature belongs to, in feature order (see Signals.binary_features).
FEATURE_SIGNALS = ("rules",) * len(CATEGORIES) + ("head", "neighbours", "profanity_model")
SIGNAL_NAMES = ("rules", "head", "neighbours", "profanity_model")
# The target cues the category model reads: all but `mention`. Every OLID tweet opens with
# @USER, and OLID is nearly all the TARGETED_HARASSMENT the shipped sources have, so the fit
# learned "@-mention, so TARGETED_HARASSMENT" and named chat insults, which carry no handle,
# TOXIC (pooled TARGETED_HARASSMENT F1 over the left-out sources 0.27 with it, 0.45 without).
CATEGORY_TARGETS = tuple(name for name in TARGET_FEATURES if name != "mention")
_TARGET_COLUMNS = [TARGET_FEATURES.index(name) for name in CATEGORY_TARGETS]
# The category model's features, in order (see Signals.category_features).
CATEGORY_FEATURES = (
    *(f"head:{c.value}" for c in HARMFUL_CATEGORIES),
    *(f"neighbours:{c.value}" for c in HARMFUL_CATEGORIES),
    *(f"rules:{c.value}" for c in HARMFUL_CATEGORIES),
    "profanity_model",
    *(f"target:{name}" for name in CATEGORY_TARGETS),
)


@dataclass(frozen=True)
class Signals:
    """What each source of evidence says about a batch; row i belongs to text i."""

    rule_per_category: Matrix  # (n, categories), LOW_RISK column 0
    rule_overall: Matrix  # (n,)
    head_scores: Matrix  # (n, categories), ridge scores
    neighbour_probs: Matrix  # (n, categories)
    profanity: Matrix  # (n,) alt-profanity-check's probability
    targets: Matrix  # (n, TARGET_FEATURES) whom the text is aimed at, 0/1 each

    def binary_features(self) -> Matrix:
        """The blender's input, one column per entry of FEATURE_SIGNALS."""
        harmful_rules = self.rule_per_category[:, HARMFUL_COLUMNS]
        columns = [
            self.rule_overall[:, None],
            harmful_rules,
            1.0 - self.head_scores[:, LOW : LOW + 1],
            1.0 - self.neighbour_probs[:, LOW : LOW + 1],
            logit(self.profanity)[:, None],
        ]
        return np.hstack(columns).astype(np.float32)

    def category_features(self) -> Matrix:
        """The category model's input, one column per entry of CATEGORY_FEATURES."""
        columns = [
            self.head_scores[:, HARMFUL_COLUMNS],
            self.neighbour_probs[:, HARMFUL_COLUMNS],
            self.rule_per_category[:, HARMFUL_COLUMNS],
            logit(self.profanity)[:, None],
            self.targets[:, _TARGET_COLUMNS],
        ]
        return np.hstack(columns).astype(np.float32)

    def rows(self, keep: npt.NDArray[np.int64]) -> Signals:
        """The signals of some rows."""
        return Signals(
            self.rule_per_category[keep],
            self.rule_overall[keep],
            self.head_scores[keep],
            self.neighbour_probs[keep],
            self.profanity[keep],
            self.targets[keep],
        )


@dataclass(frozen=True)
class Blender:
    """Binary weights over the signals' features, the fitted cut-off, and the category model."""

    weights: Matrix  # (binary features,)
    bias: float
    threshold: float  # the probability at which the fitted blend calls a text harmful
    category_weights: Matrix  # (category features, harmful categories)
    category_bias: Matrix  # (harmful categories,)

    def log_odds(self, signals: Signals) -> Matrix:
        """Harmful log-odds of each row, shifted so 0 is the fitted cut-off."""
        result: Matrix = (
            signals.binary_features() @ self.weights + self.bias - logit(np.array(self.threshold))
        )
        return result

    def contributions(self, signals: Signals) -> dict[str, Matrix]:
        """Each signal's additive share of log_odds (plus `bias`), per row."""
        terms = signals.binary_features() * self.weights
        shares = {
            name: terms[:, [i for i, s in enumerate(FEATURE_SIGNALS) if s == name]].sum(axis=1)
            for name in SIGNAL_NAMES
        }
        shares["bias"] = np.full(
            len(terms), self.bias - float(logit(np.array(self.threshold))), dtype=np.float32
        )
        return shares

    def category_probs(self, signals: Signals) -> Matrix:
        """Which harmful category a text is, if harmful: (n, categories), LOW_RISK column 0."""
        logits = signals.category_features() @ self.category_weights + self.category_bias
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        out = np.zeros((len(logits), len(CATEGORIES)), dtype=np.float32)
        out[:, HARMFUL_COLUMNS] = weights / weights.sum(axis=1, keepdims=True)
        return out

    def save(self, path: Path) -> None:
        """Write the blender as a .npz of plain arrays."""
        with path.open("wb") as handle:
            np.savez(
                handle,
                weights=self.weights,
                bias=np.float32(self.bias),
                threshold=np.float32(self.threshold),
                category_weights=self.category_weights,
                category_bias=self.category_bias,
                features=np.array(json.dumps(FEATURE_SIGNALS)),
                category_features=np.array(json.dumps(CATEGORY_FEATURES)),
            )

    @classmethod
    def load(cls, path: Path) -> Blender:
        """Read a blender written by save(); refuse one made for other features."""
        try:
            with np.load(path) as data:
                if json.loads(str(data["features"])) != list(FEATURE_SIGNALS) or (
                    "category_features" not in data
                    or json.loads(str(data["category_features"])) != list(CATEGORY_FEATURES)
                ):
                    raise ConfigError(f"{path} was trained for other signals; retrain it")
                return cls(
                    data["weights"].astype(np.float32),
                    float(data["bias"]),
                    float(data["threshold"]),
                    data["category_weights"].astype(np.float32),
                    data["category_bias"].astype(np.float32),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot load blender {path}: {exc}") from exc
