"""The index over the reference examples' vectors (FAISS, or numpy without it): neighbours.

The index type is an `IndexSpec` preset (`REFERENCE_INDEX`): the exact flat index by default, or
an approximate one built by `faiss.index_factory` (trained on the vectors where the type needs
it). Every type takes `add` after training, so examples added at run time are found at once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.errors import ConfigError
from core.models import CATEGORIES, Category, Neighbor
from core.screening.reference.spec import MIN_POINTS_PER_LIST, IndexSpec

log = structlog.get_logger(__name__)

_CATEGORY_INDEX = {category: i for i, category in enumerate(CATEGORIES)}
MANIFEST = "manifest.json"
MIN_TRAINING_ROWS = 2 * MIN_POINTS_PER_LIST  # two lists (or two PQ centroids), each trainable

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


def _faiss() -> Any:
    """The faiss module, or None where it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    # faiss only switches to its BLAS kernel from 334 queries a call by default; our
    # batches are ~100, where BLAS is already several times faster than the scalar loop.
    faiss.cvar.distance_compute_blas_threshold = 16
    return faiss


def _search_backend(dim: int) -> Any:
    """A faiss flat inner-product index, or the numpy equivalent where faiss is not installed."""
    faiss = _faiss()
    return _NumpySearch(dim) if faiss is None else faiss.IndexFlatIP(dim)


def _built_backend(spec: IndexSpec, vectors: Vectors) -> Any:
    """An empty (trained where the type needs it) faiss index of the spec's type for `vectors`."""
    faiss = _faiss()
    if faiss is None:
        log.warning("reference_index_exact_without_faiss", wanted=spec.kind)
        return _NumpySearch(int(vectors.shape[1]))
    rows, dim = vectors.shape
    index = faiss.index_factory(dim, spec.factory(rows, dim), faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        if rows < MIN_TRAINING_ROWS:
            raise ConfigError(
                f"reference index type {spec.kind} trains on the vectors and needs at least "
                f"{MIN_TRAINING_ROWS} of them, not {rows}; use flat or hnsw"
            )
        index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _apply_search_parameters(index: Any, spec: IndexSpec) -> None:
    """Set nprobe / efSearch through faiss's ParameterSpace (search time only)."""
    faiss = _faiss()
    if faiss is None or isinstance(index, _NumpySearch):
        return
    space = faiss.ParameterSpace()
    for name, value in spec.search_parameters().items():
        space.set_index_parameter(index, name, value)


class ReferenceIndex:
    """Inner-product search over L2-normalised vectors, with one label per vector."""

    def __init__(
        self,
        vectors: Vectors,
        ids: Sequence[str],
        labels: Sequence[Category],
        spec: IndexSpec | None = None,
        *,
        backend: Any = None,
    ) -> None:
        if backend is None and (len(vectors) != len(ids) or len(ids) != len(labels)):
            raise ConfigError("reference vectors, ids and labels differ in length")
        self.spec = spec or IndexSpec()
        self.dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self.ids: list[str] = []
        self.labels = np.zeros(0, dtype=np.int64)
        if backend is not None:  # a built index read by load(): its vectors are in it already
            self._index = backend
            self.dim = int(backend.d)
            self.ids = list(ids)
            self.labels = np.array([_CATEGORY_INDEX[label] for label in labels], dtype=np.int64)
        elif self.spec.exact or len(vectors) == 0:
            self._index = _search_backend(self.dim)
            self.add(vectors, ids, labels)
        else:
            self._index = _built_backend(self.spec, vectors)
            self.add(vectors, ids, labels)
        _apply_search_parameters(self._index, self.spec)

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

    def label_list(self) -> list[Category]:
        """Each example's label, in insertion order."""
        return [CATEGORIES[i] for i in self.labels]

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
        """Every indexed vector, in insertion order (as stored: decoded, for quantised types)."""
        faiss = _faiss()
        if faiss is not None and not isinstance(self._index, _NumpySearch) and not self.spec.exact:
            ivf = faiss.try_extract_index_ivf(self._index)
            if ivf is not None:
                ivf.make_direct_map()  # IVF lists know no insertion order without it
        found: Vectors = self._index.reconstruct_n(0, len(self.ids))
        return found

    def serialized_bytes(self) -> int:
        """The size of the faiss index as written to disk (vectors, codes, lists, graph)."""
        faiss = _faiss()
        if faiss is None or isinstance(self._index, _NumpySearch):
            return len(self.ids) * self.dim * 4
        return int(faiss.serialize_index(self._index).size)

    def save(self, directory: Path, about: dict[str, Any] | None = None) -> None:
        """Write the index, its ids and labels, and a manifest of its type (with `about`: what
        it was built from) into a directory."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"ids": self.ids, "labels": [CATEGORIES[i].value for i in self.labels]}
        (directory / "examples.json").write_text(json.dumps(meta))
        manifest: dict[str, Any] = {
            "type": self.spec.kind,
            "ntotal": len(self.ids),
            **(about or {}),
        }
        faiss = _faiss()
        if self.spec.exact or faiss is None or isinstance(self._index, _NumpySearch):
            np.save(directory / "vectors.npy", self.vectors())
            manifest["type"] = "flat"
        else:
            faiss.write_index(self._index, str(directory / "index.faiss"))
            manifest["factory"] = self.spec.factory(len(self.ids), self.dim)
            manifest["nlist"] = self.spec.lists(len(self.ids)) if self.spec.inverted else None
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, directory: Path, spec: IndexSpec | None = None) -> ReferenceIndex:
        """Read an index written by save(); `spec` gives the search parameters (nprobe, ef)."""
        ids, labels = read_examples(directory)
        try:
            if (directory / "index.faiss").exists():
                faiss = _faiss()
                if faiss is None:
                    raise ConfigError(f"{directory} holds a faiss index and faiss is not installed")
                backend = faiss.read_index(str(directory / "index.faiss"))
                manifest = json.loads((directory / MANIFEST).read_text())
                spec = spec or IndexSpec(manifest["type"])
                return cls(np.zeros((0, backend.d), np.float32), ids, labels, spec, backend=backend)
            vectors = np.load(directory / "vectors.npy")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ConfigError(f"cannot load reference index from {directory}: {exc}") from exc
        return cls(vectors, ids, labels)


def read_examples(directory: Path) -> tuple[list[str], list[Category]]:
    """The ids and labels an index directory holds, in insertion order."""
    try:
        meta = json.loads((directory / "examples.json").read_text())
        return list(meta["ids"]), [Category(label) for label in meta["labels"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot load reference index from {directory}: {exc}") from exc


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a built index, or None where there is none (or it is unreadable)."""
    try:
        found = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def replace_directory(staging: Path, directory: Path) -> None:
    """Move a fully written staging directory into place; the first writer wins."""
    try:
        staging.rename(directory)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)


def staging_for(directory: Path) -> Path:
    """An empty private directory beside `directory`, to write into before the rename."""
    staging = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging
