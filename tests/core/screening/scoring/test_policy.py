"""The recommended action: per-category thresholds from the scoring file, per-platform overrides."""

from __future__ import annotations

import pytest

from core.models import Action, Category
from core.screening import ActionPolicy, ScoringConfig


def test_the_shipped_scoring_file_maps_scores_to_actions() -> None:
    policy = ScoringConfig.load().actions
    assert policy.action(Category.LOW_RISK, 0.99, high=False) is Action.ALLOW
    assert policy.action(Category.TOXIC, 0.99, high=False) is Action.ALLOW
    assert policy.action(Category.TOXIC, 0.3, high=True) is Action.REVIEW
    assert policy.action(Category.TOXIC, 0.7, high=True) is Action.HIDE
    assert policy.action(Category.TOXIC, 0.9, high=True) is Action.BLOCK
    assert policy.action(Category.VIOLENCE, 0.7, high=True) is Action.BLOCK


def test_a_platform_overrides_the_category_thresholds() -> None:
    policy = ActionPolicy.model_validate(
        {
            "categories": {"SPAM": {"hide": 0.5, "block": 0.9}},
            "platforms": {
                "telegram": {"categories": {"SPAM": {"block": 0.6}}},
                "slack": {"hide": 0.2},
            },
        }
    )
    assert policy.action(Category.SPAM, 0.7, high=True) is Action.HIDE
    assert policy.action(Category.SPAM, 0.7, high=True, platform="telegram") is Action.BLOCK
    assert policy.action(Category.TOXIC, 0.3, high=True, platform="slack") is Action.HIDE


def test_a_block_threshold_below_the_hide_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="block must not be below hide"):
        ActionPolicy.model_validate({"categories": {"SPAM": {"hide": 0.8, "block": 0.5}}})
