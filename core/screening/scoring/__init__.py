"""From signals to a decision: the trained head and profanity model, the blender, runtime
examples, thresholds and the action policy.

The batch walks one way: the head and the profanity model score the texts, the blender adds
them with the rules and neighbours into harmful log-odds and a category mix, runtime examples
(moderator reviews) adjust both, and `score` thresholds the result under a `ScoringConfig`.
`arrays` holds what they all share: the array types, the label columns, logit and sigmoid.
"""

from core.screening.scoring.arrays import HARMFUL_COLUMNS, LOW, Matrix, Vectors, logit, sigmoid
from core.screening.scoring.blender import Blender, Signals
from core.screening.scoring.bundle import DEFAULT_MODEL_PATH, ModelBundle
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig, Thresholds
from core.screening.scoring.examples import Adjustment, ExamplesConfig, RuntimeExamples
from core.screening.scoring.head import HeadStatistics, LinearHead
from core.screening.scoring.policy import ActionPolicy
from core.screening.scoring.profanity import ProfanityModel
from core.screening.scoring.scores import Scores, rule_scores, score

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DEFAULT_SCORING_PATH",
    "HARMFUL_COLUMNS",
    "LOW",
    "ActionPolicy",
    "Adjustment",
    "Blender",
    "ExamplesConfig",
    "HeadStatistics",
    "LinearHead",
    "Matrix",
    "ModelBundle",
    "ProfanityModel",
    "RuntimeExamples",
    "Scores",
    "ScoringConfig",
    "Signals",
    "Thresholds",
    "Vectors",
    "logit",
    "rule_scores",
    "score",
    "sigmoid",
]
