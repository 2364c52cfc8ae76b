"""The category model's fit: which categories each label leaves open, and a softmax over them.

The sources label harm with different schemes. OLID tells an insult aimed at a person
(TARGETED_HARASSMENT) from untargeted profanity (TOXIC); davidson, surge and sbic have no such
label and file both under TOXIC; only openai_moderation and sbic label SEXUAL, the others file
sexual remarks under their other labels. Taken literally, their TOXIC rows teach that insults
aimed at a person are TOXIC, which is why flagged chat insults were almost never named
TARGETED_HARASSMENT (pooled F1 0.083 over the left-out sources). So a row asks for its label or
a category its source never labels, where the text shows that category's cue
(`core.screening.text.target`): the fit learns how to split such rows from the sources that do
label both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import numpy.typing as npt

from core.models import CATEGORIES, Category
from core.screening.scoring.arrays import HARMFUL_COLUMNS
from core.screening.text.target import TARGET_FEATURES

Vectors = npt.NDArray[np.float32]
BoolMatrix = npt.NDArray[np.bool_]
_INDEX = {category: CATEGORIES.index(category) for category in CATEGORIES}
# A category a source may never label, the labels such a source files those texts under, and
# the target cues (any of them) that a text must show to be opened to the category.
OPEN_LABELS: tuple[tuple[int, tuple[int, ...], tuple[str, ...]], ...] = (
    (
        _INDEX[Category.TARGETED_HARASSMENT],
        (_INDEX[Category.TOXIC],),
        ("addressee", "mention", "individual", "command"),
    ),
    (
        _INDEX[Category.SEXUAL],
        tuple(
            _INDEX[c] for c in (Category.TOXIC, Category.TARGETED_HARASSMENT, Category.HATE_SPEECH)
        ),
        ("sexual_topic",),
    ),
)
# The L-BFGS iteration cap; the fit converges in a few hundred on the shipped data.
MAX_ITERATIONS = 3000


def label_sets(
    labels: npt.NDArray[np.int64],
    sources: npt.NDArray[np.str_],
    cues: Vectors,
    labelled: Mapping[int, Collection[str]],
) -> BoolMatrix:
    """Which harmful categories each row's label leaves open: (rows, harmful categories).

    `cues` are the rows' TARGET_FEATURES; `labelled` names, per category, the sources that
    label it somewhere (in all their rows, not only these). Every row keeps its own label.
    """
    allowed = np.zeros((len(labels), len(HARMFUL_COLUMNS)), dtype=bool)
    allowed[np.arange(len(labels)), [HARMFUL_COLUMNS.index(int(c)) for c in labels]] = True
    for category, under, cue in OPEN_LABELS:
        shown = cues[:, [TARGET_FEATURES.index(name) for name in cue]].any(axis=1)
        unlabelled = ~np.isin(sources, sorted(labelled.get(category, ())))
        allowed[np.isin(labels, under) & unlabelled & shown, HARMFUL_COLUMNS.index(category)] = True
    return allowed


def softmax_fit(
    features: Vectors, allowed: BoolMatrix, weights: Vectors, regularisation: float
) -> tuple[Vectors, Vectors]:
    """Softmax weights over the harmful categories that maximise each row's weighted probability
    of its allowed set, with the L2 penalty of scikit-learn's LogisticRegression (C =
    `regularisation`, bias unpenalised): with one category per row it is that very model.

    Categories no row allows get a bias so low they never win.
    """
    from scipy.optimize import minimize

    seen = np.flatnonzero(allowed.any(axis=0))
    weights_out = np.zeros((features.shape[1], len(HARMFUL_COLUMNS)), dtype=np.float32)
    bias_out = np.full(len(HARMFUL_COLUMNS), -30.0, dtype=np.float32)
    if len(seen) == 1:  # nothing to tell apart: the one category always wins
        bias_out[seen] = 0.0
        return weights_out, bias_out
    x = np.hstack([features, np.ones((len(features), 1))]).astype(np.float64)
    mask = allowed[:, seen].astype(np.float64)
    w = weights.astype(np.float64)
    shape = (x.shape[1], len(seen))

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coef = theta.reshape(shape)
        logits = x @ coef
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        inside = np.maximum((p * mask).sum(axis=1), 1e-300)
        value = -float(w @ np.log(inside)) + 0.5 / regularisation * float((coef[:-1] ** 2).sum())
        grad = x.T @ (w[:, None] * (p - p * mask / inside[:, None]))
        grad[:-1] += coef[:-1] / regularisation
        return value, grad.ravel()

    found = minimize(
        loss, np.zeros(x.shape[1] * len(seen)), jac=True, method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS},
    )  # fmt: skip
    coef = found.x.reshape(shape)
    weights_out[:, seen] = coef[:-1]
    bias_out[seen] = coef[-1]
    return weights_out, bias_out
