"""The blender: its receipt adds up, and a saved blender loads back or is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import CATEGORIES, HARMFUL_CATEGORIES, Category
from core.screening.scoring.arrays import logit, sigmoid
from core.screening.scoring.blender import (
    CATEGORY_FEATURES,
    FEATURE_SIGNALS,
    Blender,
    Signals,
)
from core.screening.text.target import TARGET_FEATURES

LOW = CATEGORIES.index(Category.LOW_RISK)


def signals(rows: int = 5, seed: int = 0) -> Signals:
    """Random but well-formed signals."""
    rng = np.random.default_rng(seed)
    per = rng.random((rows, len(CATEGORIES))).astype(np.float32)
    per[:, LOW] = 0.0
    votes = rng.dirichlet(np.ones(len(CATEGORIES)), rows).astype(np.float32)
    return Signals(
        per,
        per.max(axis=1),
        votes * 1.2 - 0.1,
        votes,
        rng.random(rows).astype(np.float32),
        rng.integers(0, 2, (rows, len(TARGET_FEATURES))).astype(np.float32),
    )


def blender(seed: int = 1) -> Blender:
    """A blender with random weights."""
    rng = np.random.default_rng(seed)
    category_features = signals().category_features().shape[1]
    return Blender(
        rng.normal(size=len(FEATURE_SIGNALS)).astype(np.float32),
        0.3,
        0.4,
        rng.normal(size=(category_features, len(CATEGORIES) - 1)).astype(np.float32),
        rng.normal(size=len(CATEGORIES) - 1).astype(np.float32),
    )


def test_signal_contributions_add_up_to_the_log_odds() -> None:
    model, batch = blender(), signals()
    total = sum(model.contributions(batch).values())
    assert np.allclose(total, model.log_odds(batch), atol=1e-5)
    assert set(model.contributions(batch)) == {
        "rules",
        "head",
        "neighbours",
        "profanity_model",
        "bias",
    }


def test_log_odds_zero_is_the_fitted_cut_off() -> None:
    model, batch = blender(), signals()
    raw = sigmoid(batch.binary_features() @ model.weights + model.bias)
    assert np.array_equal(model.log_odds(batch) >= 0, raw >= model.threshold)


def test_category_mix_covers_only_harmful_categories() -> None:
    mix = blender().category_probs(signals())
    assert np.allclose(mix.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(mix[:, LOW] == 0.0)


def test_saved_blender_loads_back_unchanged(tmp_path: Path) -> None:
    model = blender()
    model.save(tmp_path / "blender.npz")
    loaded = Blender.load(tmp_path / "blender.npz")
    assert np.array_equal(loaded.weights, model.weights)
    assert loaded.threshold == pytest.approx(model.threshold)


def test_blender_for_other_signals_is_refused(tmp_path: Path) -> None:
    model = blender()
    path = tmp_path / "blender.npz"
    np.savez(path, weights=model.weights, bias=0.0, threshold=0.5,
             category_weights=model.category_weights, category_bias=model.category_bias,
             features=np.array('["rules"]'))  # fmt: skip
    with pytest.raises(ConfigError, match="other signals"):
        Blender.load(path)


def test_logit_clips_certainties() -> None:
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()


def test_blender_for_other_category_features_is_refused(tmp_path: Path) -> None:
    model = blender()
    path = tmp_path / "blender.npz"
    np.savez(path, weights=model.weights, bias=0.0, threshold=0.5,
             category_weights=model.category_weights, category_bias=model.category_bias,
             features=np.array(json.dumps(FEATURE_SIGNALS)))  # fmt: skip
    with pytest.raises(ConfigError, match="other signals"):
        Blender.load(path)


def test_the_category_model_reads_whom_the_text_is_aimed_at() -> None:
    batch = signals()
    model = blender()
    weights = np.zeros_like(model.category_weights)
    addressee = CATEGORY_FEATURES.index("target:addressee")
    weights[addressee, HARMFUL_CATEGORIES.index(Category.TARGETED_HARASSMENT)] = 10.0
    aimed = Blender(model.weights, 0.0, 0.5, weights, np.zeros(len(HARMFUL_CATEGORIES), np.float32))
    targets = batch.targets.copy()
    targets[:, TARGET_FEATURES.index("addressee")] = [1, 0, 1, 0, 1]
    mix = aimed.category_probs(replace(batch, targets=targets))
    named = mix.argmax(axis=1)
    th = CATEGORIES.index(Category.TARGETED_HARASSMENT)
    assert (named == th).tolist() == [True, False, True, False, True]
