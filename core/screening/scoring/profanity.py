"""alt-profanity-check (MIT) as one signal: a TF-IDF + linear SVM trained on data we lack.

Its word model knows profanity and insults from a large corpus of tweets and Wikipedia comments.
`make model` exports it from the installed package into plain arrays (`profanity.npz`: the
vocabulary, idf weights, and the five calibrated SVMs), and `ProfanityModel` reproduces its
`predict_prob` in numpy: a screening worker needs neither scikit-learn nor joblib for it, and at
about 30 microseconds a text it is cheap next to the embedding (about 2 ms).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError

PEER_NAME = "alt-profanity-check"
# scikit-learn's default token pattern, which the package's vectoriser uses.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")

Vector = npt.NDArray[np.float64]


class ProfanityModel:
    """The probability that a text is offensive, as alt-profanity-check's predict_prob gives it."""

    name = PEER_NAME

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: Vector,
        coef: Vector,
        intercept: Vector,
        calibration: Vector,
    ) -> None:
        self._vocabulary = vocabulary
        self._idf = idf
        self._coef = coef  # (svms, vocabulary)
        self._intercept = intercept  # (svms,)
        self._calibration = calibration  # (svms, 2): a, b of each sigmoid

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One probability per text."""
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        vocabulary = self._vocabulary
        for row, text in enumerate(texts):
            found = Counter(
                vocabulary[token] for token in _TOKEN.findall(text.lower()) if token in vocabulary
            )
            rows.extend([row] * len(found))
            columns.extend(found.keys())
            counts.extend(found.values())
        # TF-IDF with an L2 norm per text, then every SVM's decision, for the batch at once.
        where = np.asarray(rows, dtype=np.int64)
        column = np.asarray(columns, dtype=np.int64)
        weights = np.asarray(counts, dtype=np.float64) * self._idf[column]
        norms = np.sqrt(np.bincount(where, weights * weights, minlength=len(texts)))
        weights /= np.where(norms > 0, norms, 1.0)[where]
        decisions = np.zeros((len(self._intercept), len(texts)), dtype=np.float64)
        for svm in range(len(self._intercept)):
            decisions[svm] = np.bincount(
                where, self._coef[svm, column] * weights, minlength=len(texts)
            )
        decisions = decisions.T + self._intercept
        a, b = self._calibration[:, 0], self._calibration[:, 1]
        calibrated = 1.0 / (1.0 + np.exp(a * decisions + b))
        result: npt.NDArray[np.float32] = calibrated.mean(axis=1).astype(np.float32)
        return result

    def save(self, path: Path) -> None:
        """Write the model as plain arrays."""
        terms = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        with path.open("wb") as handle:
            np.savez(
                handle,
                terms=np.array(terms),
                idf=self._idf,
                coef=self._coef,
                intercept=self._intercept,
                calibration=self._calibration,
            )

    @classmethod
    def load(cls, path: Path) -> ProfanityModel:
        """Read a model written by save()."""
        try:
            with np.load(path) as data:
                terms = [str(term) for term in data["terms"]]
                return cls(
                    {term: i for i, term in enumerate(terms)},
                    data["idf"].astype(np.float64),
                    data["coef"].astype(np.float64),
                    data["intercept"].astype(np.float64),
                    data["calibration"].astype(np.float64),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot load the profanity model {path}: {exc}") from exc

    @classmethod
    def from_package(cls) -> ProfanityModel:
        """Export the installed alt-profanity-check (needs it, and scikit-learn, installed)."""
        try:
            from profanity_check import profanity_check as package
        except ImportError as exc:
            raise ConfigError("alt-profanity-check is not installed") from exc
        vectoriser, model = package.vectorizer, package.model
        svms = model.calibrated_classifiers_
        return cls(
            {str(term): int(i) for term, i in vectoriser.vocabulary_.items()},
            np.asarray(vectoriser.idf_, dtype=np.float64),
            np.vstack([np.ravel(c.estimator.coef_) for c in svms]),
            np.array([float(np.ravel(c.estimator.intercept_)[0]) for c in svms]),
            np.array([[c.calibrators[0].a_, c.calibrators[0].b_] for c in svms], dtype=np.float64),
        )
