"""The shared vocabulary of scoring: batch array types, the label columns, logit and sigmoid.

Every array in scoring holds one row per text of a batch and, where it has one column per
category, the columns in `core.models.CATEGORIES` order (LOW_RISK first).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from core.models import CATEGORIES, Category

Matrix = npt.NDArray[np.float32]
Vectors = npt.NDArray[np.float32]
LOW = CATEGORIES.index(Category.LOW_RISK)
HARMFUL_COLUMNS = [i for i in range(len(CATEGORIES)) if i != LOW]
_CLIP = 1e-4


def logit(probabilities: npt.NDArray[np.floating], clip: float = _CLIP) -> Matrix:
    """Log-odds, with probabilities clipped away from 0 and 1."""
    p = np.clip(probabilities.astype(np.float64), clip, 1.0 - clip)
    result: Matrix = np.log(p / (1.0 - p)).astype(np.float32)
    return result


def sigmoid(values: npt.NDArray[np.floating]) -> Matrix:
    """The logistic function."""
    result: Matrix = (1.0 / (1.0 + np.exp(-values.astype(np.float64)))).astype(np.float32)
    return result
