"""Scoring: noisy-OR rule scores, the blend, thresholds per category and platform, severity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import CATEGORIES, Category
from core.screening.rules import RuleHit
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig, Thresholds
from core.screening.scoring.scores import rule_scores, score

LOW = CATEGORIES.index(Category.LOW_RISK)


def probs(**values: float) -> np.ndarray:
    """A one-row harmful-category mix (LOW_RISK column 0)."""
    row = np.zeros((1, len(CATEGORIES)), dtype=np.float32)
    for name, value in values.items():
        row[0, CATEGORIES.index(Category(name))] = value
    return row


def run(config: ScoringConfig, risk: float, mix: np.ndarray, platform: str | None = None):  # type: ignore[no-untyped-def]
    """Score one event whose blended risk is `risk`."""
    return score(
        config,
        log_odds=np.array([np.log(risk / (1 - risk))], dtype=np.float32),
        category_probs=mix,
        platforms=[platform],
    )


def hit(category: Category, weight: float) -> RuleHit:
    """A rule hit with no evidence."""
    return RuleHit("r", category, weight, ())


def test_rule_scores_combine_as_noisy_or() -> None:
    per, overall = rule_scores(
        [[hit(Category.TOXIC, 0.5), hit(Category.TOXIC, 0.5), hit(Category.SPAM, 0.2)], []]
    )
    assert per[0, CATEGORIES.index(Category.TOXIC)] == pytest.approx(0.75)
    assert per[0, CATEGORIES.index(Category.SPAM)] == pytest.approx(0.2)
    assert overall[0] == pytest.approx(1 - 0.25 * 0.8)
    assert overall[1] == 0.0


def test_risk_is_the_sigmoid_of_the_log_odds_and_category_scores_share_it() -> None:
    scores = run(ScoringConfig(), 0.8, probs(TOXIC=0.75, SPAM=0.25))
    assert scores.risk[0] == pytest.approx(0.8, abs=1e-5)
    assert scores.category_scores[0, LOW] == pytest.approx(0.2, abs=1e-5)
    assert scores.category_scores[0, CATEGORIES.index(Category.TOXIC)] == pytest.approx(0.6)
    assert CATEGORIES[scores.category[0]] is Category.TOXIC


def test_overall_threshold_decides_the_route() -> None:
    config = ScoringConfig(thresholds=Thresholds(any=0.5))
    assert not run(config, 0.4, probs(TOXIC=1.0)).high[0]
    assert run(config, 0.6, probs(TOXIC=1.0)).high[0]
    low = run(config, 0.1, probs(TOXIC=1.0))
    assert CATEGORIES[low.category[0]] is Category.LOW_RISK


def test_a_category_threshold_can_route_high_on_its_own() -> None:
    config = ScoringConfig(thresholds=Thresholds(any=0.9, categories={Category.SPAM: 0.2}))
    scores = run(config, 0.4, probs(SPAM=0.6, TOXIC=0.4))
    assert scores.high[0]
    assert CATEGORIES[scores.category[0]] is Category.SPAM


def test_platform_overrides_replace_the_defaults_for_that_platform_only() -> None:
    config = ScoringConfig.model_validate(
        {"thresholds": {"any": 0.5}, "platforms": {"telegram": {"categories": {"SPAM": 0.1}}}}
    )
    assert run(config, 0.3, probs(SPAM=1.0), "telegram").high[0]
    assert not run(config, 0.3, probs(SPAM=1.0), "discord").high[0]
    assert config.thresholds_for("telegram")[0] == 0.5


def test_the_highest_harmful_category_names_a_high_event() -> None:
    scores = run(ScoringConfig(), 0.9, probs(TOXIC=0.3, VIOLENCE=0.7))
    assert CATEGORIES[scores.category[0]] is Category.VIOLENCE


def test_shipped_scoring_file_loads_with_a_version_and_the_fitted_cut_off() -> None:
    config = ScoringConfig.load(DEFAULT_SCORING_PATH)
    assert len(config.version) == 12
    assert config.thresholds.any == 0.5  # 0.5 is the blender's fitted operating point
    assert config.examples.similar_from < config.examples.certain_at


def test_bad_scoring_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text("rules_weight = 0.6\n")
    with pytest.raises(ConfigError, match="rules_weight"):
        ScoringConfig.load(path)
