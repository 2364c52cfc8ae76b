"""A linear head over features (embeddings and rule scores): per-category scores.

The shipped head is a ridge regression onto one-hot labels, solved in closed form from
per-source statistics (`HeadStatistics`), so a head for any subset of sources costs a 385 x 385
solve: leave-one-source-out training of the blender needs dozens of them. A logistic fit
(scikit-learn, at training time only) is kept for experiments. Prediction is a matrix product in
numpy either way, so screening workers do not need scikit-learn and a saved head is plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LinearHead:
    """Multinomial logistic regression: probabilities = softmax(features @ weights + bias)."""

    weights: Matrix  # (n_features, n_classes)
    bias: Matrix  # (n_classes,)

    @classmethod
    def fit(
        cls,
        features: Matrix,
        labels: npt.NDArray[np.int64],
        n_classes: int,
        *,
        sample_weight: npt.NDArray[np.float64] | None = None,
        regularisation: float = 1.0,
        seed: int = 0,
    ) -> LinearHead:
        """Train on labelled feature rows; classes absent from `labels` get no probability mass."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=regularisation, max_iter=2000, random_state=seed)
        model.fit(features, labels, sample_weight=sample_weight)
        weights = np.zeros((features.shape[1], n_classes), dtype=np.float32)
        bias = np.full(n_classes, -1e4, dtype=np.float32)
        present = model.classes_.astype(np.int64)
        if len(present) == 2:  # scikit-learn keeps one row for two classes: expand to both
            weights[:, present[1]] = model.coef_[0]
            bias[present] = [0.0, model.intercept_[0]]
        else:
            weights[:, present] = model.coef_.T
            bias[present] = model.intercept_
        return cls(weights, bias)

    def scores(self, features: Matrix) -> Matrix:
        """Per-class linear scores of each row (for a ridge head: about 1 for its class)."""
        result: Matrix = features.astype(np.float32) @ self.weights + self.bias
        return result

    def predict_proba(self, features: Matrix) -> Matrix:
        """Per-class probabilities of each row."""
        logits = features.astype(np.float32) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        result: Matrix = logits / logits.sum(axis=1, keepdims=True)
        return result

    def save(self, path: Path) -> None:
        """Write the head as a .npz of its two arrays."""
        with path.open("wb") as handle:
            np.savez(handle, weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        """Read a head written by save()."""
        try:
            with np.load(path) as data:
                return cls(data["weights"].astype(np.float32), data["bias"].astype(np.float32))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot load classifier head {path}: {exc}") from exc


def head_features(vectors: Matrix, rule_per_category: Matrix) -> Matrix:
    """The head's input: the embedding followed by the per-category rule scores."""
    return np.hstack([vectors, rule_per_category]).astype(np.float32, copy=False)


class HeadStatistics:
    """Per-source sufficient statistics of a source-balanced ridge head.

    Each source counts once whatever its size (the 25k-tweet davidson set would otherwise decide
    what harmful means), so a head for any subset of sources is one linear solve.
    """

    def __init__(
        self,
        features: Matrix,
        labels: npt.NDArray[np.int64],
        sources: Sequence[str],
        n_classes: int,
    ) -> None:
        self.n_classes = n_classes
        self._stats: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
        names = np.asarray(sources)
        with_bias = np.hstack([features, np.ones((len(features), 1), dtype=np.float32)])
        for name in sorted(set(names.tolist())):
            rows = with_bias[names == name].astype(np.float64)
            targets = np.eye(n_classes)[labels[names == name]]
            self._stats[name] = (rows.T @ rows / len(rows), rows.T @ targets / len(rows))

    @property
    def sources(self) -> list[str]:
        """The sources these statistics cover."""
        return list(self._stats)

    def solve(self, sources: Sequence[str], regularisation: float = 1e-2) -> LinearHead:
        """The ridge head trained on the given sources, each weighted equally."""
        gram = np.sum([self._stats[name][0] for name in sources], axis=0) / len(sources)
        cross = np.sum([self._stats[name][1] for name in sources], axis=0) / len(sources)
        penalty = regularisation * np.eye(gram.shape[0])
        penalty[-1, -1] = 0.0  # the bias is not shrunk
        solution = np.linalg.solve(gram + penalty, cross)
        return LinearHead(solution[:-1].astype(np.float32), solution[-1].astype(np.float32))
