"""The screening engine: normalise, apply rules, embed, find neighbours, score, decide.

`load_engine` assembles what a worker runs from the settings (model, cache, rules, reference
index, head, scoring); `ScreeningEngine.screen` turns a batch of `ScreenItem`s into decisions.
The rules live in `rules/`, the embedding models in `embedding/`, the shipped data in `data/`.
"""

from core.screening.engine import Analysis, ScreeningEngine, ScreenItem, load_engine
from core.screening.head import LinearHead
from core.screening.normalize import normalize
from core.screening.policy import ActionPolicy
from core.screening.reference import DEFAULT_REFERENCE_PATH, ReferenceIndex, ReferenceSet
from core.screening.rules import UserHistory
from core.screening.scoring import DEFAULT_SCORING_PATH, ScoringConfig

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "DEFAULT_SCORING_PATH",
    "ActionPolicy",
    "Analysis",
    "LinearHead",
    "ReferenceIndex",
    "ReferenceSet",
    "ScoringConfig",
    "ScreenItem",
    "ScreeningEngine",
    "UserHistory",
    "load_engine",
    "normalize",
]
