"""The index over the reference examples' vectors (FAISS, or numpy without it): neighbours."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.models import CATEGORIES, Category, Neighbor

_CATEGORY_INDEX = {category: i for i, category in enumerate(CATEGORIES)}

Vectors = npt.NDArray[np.float32]


class _NumpySearch:
    """Exact inner-product search with numpy, for hosts without faiss (a GPU image, say)."""

    def __init__(self, dim: int) -> None:
        self._vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, vectors: Vectors) -> None:
        """Append vectors."""
        self._vectors = np.concatenate([self._vectors, vectors])

    def search(self, queries: Vectors, k: int) -> tuple[Vectors, npt.NDArray[np.int64]]:
        """The k most similar stored vectors of each query, best first."""
        sims = queries @ self._vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        return np.take_along_axis(top_sims, order, axis=1), np.take_along_axis(top, order, axis=1)

    def reconstruct_n(self, start: int, count: int) -> Vectors:
        """Stored vectors start .. start + count."""
        return self._vectors[start : start + count]


def _search_backend(dim: int) -> Any:
    """A faiss flat inner-product index, or the numpy equivalent where faiss is not installed."""
    try:
        import faiss
    except ImportError:
        return _NumpySearch(dim)
    # faiss only switches to its BLAS kernel from 334 queries a call by default; our
    # batches are ~100, where BLAS is already several times faster than the scalar loop.
    faiss.cvar.distance_compute_blas_threshold = 16
    return faiss.IndexFlatIP(dim)


class ReferenceIndex:
    """Exact inner-product search over L2-normalised vectors, with one label per vector."""

    def __init__(self, vectors: Vectors, ids: Sequence[str], labels: Sequence[Category]) -> None:
        if len(vectors) != len(ids) or len(ids) != len(labels):
            raise ConfigError("reference vectors, ids and labels differ in length")
        self.dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self._index = _search_backend(self.dim)
        self.ids: list[str] = []
        self.labels = np.zeros(0, dtype=np.int64)
        self.add(vectors, ids, labels)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, vectors: Vectors, ids: Sequence[str], labels: Sequence[Category]) -> None:
        """Add labelled examples; they are found by the next search, with no rebuild."""
        if len(vectors) == 0:
            return
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.ids.extend(ids)
        new = np.array([_CATEGORY_INDEX[label] for label in labels], dtype=np.int64)
        self.labels = np.concatenate([self.labels, new])

    def search(self, queries: Vectors, k: int) -> tuple[Vectors, npt.NDArray[np.int64]]:
        """Similarities and positions of the k nearest examples of each query (-1 if fewer)."""
        k = min(k, len(self.ids))
        if k == 0 or len(queries) == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        sims, positions = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return sims.astype(np.float32), positions.astype(np.int64)

    def neighbors(
        self, sims: Vectors, positions: npt.NDArray[np.int64], limit: int
    ) -> list[list[Neighbor]]:
        """The first `limit` hits of a search as Neighbor records."""
        return [
            [
                Neighbor(
                    id=self.ids[p], label=CATEGORIES[self.labels[p]], similarity=round(float(s), 4)
                )
                for s, p in zip(row_sims[:limit], row_positions[:limit], strict=True)
                if p >= 0
            ]
            for row_sims, row_positions in zip(sims, positions, strict=True)
        ]

    def votes(
        self, sims: Vectors, positions: npt.NDArray[np.int64], sharpness: float = 20.0
    ) -> Vectors:
        """Per-category probabilities from the neighbours, weighted by exp(sharpness * sim)."""
        out = np.zeros((len(sims), len(CATEGORIES)), dtype=np.float32)
        if sims.shape[1] == 0:
            out[:, _CATEGORY_INDEX[Category.LOW_RISK]] = 1.0
            return out
        valid = positions >= 0
        weights = np.where(valid, np.exp(sharpness * (sims - sims[:, :1])), 0.0)
        labels = self.labels[np.where(valid, positions, 0)]
        for column in range(len(CATEGORIES)):
            out[:, column] = (weights * (labels == column)).sum(axis=1)
        totals = out.sum(axis=1, keepdims=True)
        result: Vectors = np.divide(out, totals, out=np.zeros_like(out), where=totals > 0)
        return result

    def vectors(self) -> Vectors:
        """Every indexed vector, in insertion order."""
        found: Vectors = self._index.reconstruct_n(0, len(self.ids))
        return found

    def save(self, directory: Path) -> None:
        """Write vectors, ids and labels into a directory."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", self.vectors())
        meta = {"ids": self.ids, "labels": [CATEGORIES[i].value for i in self.labels]}
        (directory / "examples.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> ReferenceIndex:
        """Read an index written by save()."""
        try:
            vectors = np.load(directory / "vectors.npy")
            meta = json.loads((directory / "examples.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load reference index from {directory}: {exc}") from exc
        return cls(vectors, meta["ids"], [Category(label) for label in meta["labels"]])
