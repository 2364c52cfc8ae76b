"""The recommended action of a decision: allow, review, hide or block.

A platform acts on `action` without reimplementing the policy. A low-risk decision is allowed; a
high-risk one goes to review, or is hidden or blocked once the score of its category reaches
that category's `hide` or `block` threshold. Thresholds come from the `[actions]` table of the
scoring file: defaults, per category, and per platform (which wins over both).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.models import Action, Category


class ActionThresholds(BaseModel):
    """Category scores at or above which a high-risk event is hidden or blocked."""

    model_config = ConfigDict(extra="forbid")

    hide: float | None = Field(None, ge=0, le=1)
    block: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ActionThresholds:
        """Blocking is the stronger action: its threshold cannot be below hiding's."""
        if self.hide is not None and self.block is not None and self.block < self.hide:
            raise ValueError("block must not be below hide")
        return self


class PlatformActions(BaseModel):
    """One platform's overrides: its own defaults and per-category thresholds."""

    model_config = ConfigDict(extra="forbid")

    hide: float | None = Field(None, ge=0, le=1)
    block: float | None = Field(None, ge=0, le=1)
    categories: dict[Category, ActionThresholds] = Field(default_factory=dict)


class ActionPolicy(BaseModel):
    """The [actions] table of the scoring file."""

    model_config = ConfigDict(extra="forbid")

    hide: float = Field(0.6, ge=0, le=1)
    block: float = Field(0.85, ge=0, le=1)
    categories: dict[Category, ActionThresholds] = Field(default_factory=dict)
    platforms: dict[str, PlatformActions] = Field(default_factory=dict)

    def thresholds(self, category: Category, platform: str | None) -> tuple[float, float]:
        """The (hide, block) thresholds for a category on a platform."""
        hide, block = self.hide, self.block
        layers: list[ActionThresholds | PlatformActions] = []
        if category in self.categories:
            layers.append(self.categories[category])
        override = self.platforms.get(platform or "")
        if override is not None:
            layers.append(override)
            if category in override.categories:
                layers.append(override.categories[category])
        for layer in layers:
            hide = layer.hide if layer.hide is not None else hide
            block = layer.block if layer.block is not None else block
        return hide, block

    def action(
        self, category: Category, score: float, high: bool, platform: str | None = None
    ) -> Action:
        """The action for a decision: its category, that category's score and its route."""
        if not high or category is Category.LOW_RISK:
            return Action.ALLOW
        hide, block = self.thresholds(category, platform)
        if score >= block:
            return Action.BLOCK
        if score >= hide:
            return Action.HIDE
        return Action.REVIEW
