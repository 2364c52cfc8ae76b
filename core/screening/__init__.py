"""The screening engine: normalise, apply rules, embed, find neighbours, score, decide.

A batch walks the stages one way, each a folder: `text/` (normalisation), `rules/`, `embedding/`
(the sentence model and its cache), `reference/` (the labelled examples and their index) and
`scoring/` (trained head, blender, runtime examples, thresholds, actions); `engine` walks a batch
through them, and `load_engine` assembles what a worker runs from the settings. The shipped data
(rules, word lists, reference set, trained weights) lives in `data/`.
"""

from core.screening.engine import Analysis, ScreeningEngine, ScreenItem, load_engine
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.rules import UserHistory
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig
from core.screening.scoring.head import LinearHead
from core.screening.scoring.policy import ActionPolicy
from core.screening.text.normalization import normalize

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
