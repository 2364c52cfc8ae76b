"""Scoring: noisy-OR rule scores, the blend, thresholds per category and platform, severity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import CATEGORIES, Category
from core.screening.rules import RuleHit
from core.screening.scoring import (
    DEFAULT_SCORING_PATH,
    ScoringConfig,
    Thresholds,
    rule_scores,
    score,
)

LOW = CATEGORIES.index(Category.LOW_RISK)


def probs(**values: float) -> np.ndarray:
    """A one-row probability matrix; LOW_RISK takes what the named categories leave."""
    row = np.zeros((1, len(CATEGORIES)), dtype=np.float32)
    for name, value in values.items():
        row[0, CATEGORIES.index(Category(name))] = value
    row[0, LOW] = 1.0 - row.sum()
    return row


def run(config: ScoringConfig, hits: list[RuleHit], head: np.ndarray, platform: str | None = None):  # type: ignore[no-untyped-def]
    """Score one event."""
    per, overall = rule_scores([hits])
    return score(
        config,
        rule_per_category=per,
        rule_overall=overall,
        head_probs=head,
        neighbour_probs=head,
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


def test_risk_is_the_weighted_blend_of_rules_and_embeddings() -> None:
    config = ScoringConfig(rules_weight=0.6, embedding_weight=0.4)
    scores = run(config, [hit(Category.TOXIC, 0.5)], probs(TOXIC=0.8))
    assert scores.heuristic[0] == pytest.approx(0.5)
    assert scores.embedding[0] == pytest.approx(0.8)
    assert scores.risk[0] == pytest.approx(0.6 * 0.5 + 0.4 * 0.8)
    assert scores.category_scores[0, LOW] == pytest.approx(1 - scores.risk[0])


def test_overall_threshold_decides_the_route() -> None:
    config = ScoringConfig(thresholds=Thresholds(any=0.5))
    assert not run(config, [], probs(TOXIC=0.9)).high[0]  # 0.4 * 0.9 = 0.36
    assert run(config, [hit(Category.TOXIC, 0.3)], probs(TOXIC=0.9)).high[0]
    low = run(config, [], probs(TOXIC=0.1))
    assert CATEGORIES[low.category[0]] is Category.LOW_RISK


def test_a_category_threshold_can_route_high_on_its_own() -> None:
    config = ScoringConfig(thresholds=Thresholds(any=0.9, categories={Category.SPAM: 0.2}))
    scores = run(config, [], probs(SPAM=0.6))
    assert scores.high[0]
    assert CATEGORIES[scores.category[0]] is Category.SPAM


def test_platform_overrides_replace_the_defaults_for_that_platform_only() -> None:
    config = ScoringConfig.model_validate(
        {"thresholds": {"any": 0.5}, "platforms": {"telegram": {"categories": {"SPAM": 0.1}}}}
    )
    assert run(config, [], probs(SPAM=0.5), "telegram").high[0]
    assert not run(config, [], probs(SPAM=0.5), "discord").high[0]
    assert config.thresholds_for("telegram")[0] == 0.5


def test_most_severe_category_close_to_the_top_names_the_event() -> None:
    config = ScoringConfig(thresholds=Thresholds(any=0.3), severity_margin=0.8)
    hits = [hit(Category.TOXIC, 0.9), hit(Category.VIOLENCE, 0.85)]
    assert (
        CATEGORIES[run(config, hits, probs(TOXIC=0.5, VIOLENCE=0.4)).category[0]]
        is Category.VIOLENCE
    )
    plain = config.model_copy(update={"severity_margin": 1.0})
    assert (
        CATEGORIES[run(plain, hits, probs(TOXIC=0.5, VIOLENCE=0.4)).category[0]] is Category.TOXIC
    )


def test_blend_weights_must_add_up_to_one() -> None:
    with pytest.raises(ValueError, match="must be 1"):
        ScoringConfig(rules_weight=0.7, embedding_weight=0.7)


def test_shipped_scoring_file_loads_with_a_version() -> None:
    config = ScoringConfig.load(DEFAULT_SCORING_PATH)
    assert len(config.version) == 12
    assert config.rules_weight + config.embedding_weight == pytest.approx(1.0)


def test_bad_scoring_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text("rules_weight = 'lots'\n")
    with pytest.raises(ConfigError, match="rules_weight"):
        ScoringConfig.load(path)
