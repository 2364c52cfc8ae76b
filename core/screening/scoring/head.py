"""A linear head over features (embeddings and rule scores): per-category scores.

The shipped head is a ridge regression onto one-hot labels, solved in closed form from
per-source statistics (`HeadStatistics`), so a head for any subset of sources costs a 385 x 385
solve: leave-one-source-out training of the blender needs dozens of them. Prediction is a matrix
product in numpy, so screening workers need no scikit-learn and a saved head is plain arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.screening.scoring.arrays import Matrix


@dataclass(frozen=True)
class LinearHead:
    """A linear map from features to per-category scores: features @ weights + bias."""

    weights: Matrix  # (n_features, n_classes)
    bias: Matrix  # (n_classes,)

    def scores(self, features: Matrix) -> Matrix:
        """Per-class linear scores of each row (for a ridge head: about 1 for its class)."""
        result: Matrix = features.astype(np.float32) @ self.weights + self.bias
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

    def solve(
        self,
        sources: Sequence[str],
        regularisation: float = 1e-2,
        weights: Mapping[str, float] | None = None,
    ) -> LinearHead:
        """The ridge head trained on the given sources, each weighted equally (or by `weights`)."""
        share = np.array([1.0 if weights is None else weights.get(n, 1.0) for n in sources])
        share = share / share.sum()
        gram = np.sum([w * self._stats[n][0] for w, n in zip(share, sources, strict=True)], axis=0)
        cross = np.sum([w * self._stats[n][1] for w, n in zip(share, sources, strict=True)], axis=0)
        penalty = regularisation * np.eye(gram.shape[0])
        penalty[-1, -1] = 0.0  # the bias is not shrunk
        solution = np.linalg.solve(gram + penalty, cross)
        return LinearHead(solution[:-1].astype(np.float32), solution[-1].astype(np.float32))
