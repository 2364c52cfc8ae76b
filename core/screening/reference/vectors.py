"""The reference set's vectors, embedded once per (model, reference set) and kept under var/.

Embedding the reference set takes minutes on a CPU, so it is done once and kept on disk (the
head and blender ship as trained weights, see `core.screening.scoring.bundle`). The vectors are
written to a temporary directory first and renamed into place, so two workers starting at once
never read half an index.

An approximate index type (`IndexSpec`, `REFERENCE_INDEX`) is built from those vectors into
`built/<type>-<hash of its factory string>/` beside them, with a manifest naming its type, factory
string, list count, reference digest, model and vector count. A worker loads the one whose
manifest matches what it would build; a missing or stale one (another reference set, another
count) is built again, by `make index` ahead of time or by the first worker that needs it.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.screening.embedding import Embedder
from core.screening.reference.dataset import ReferenceSet
from core.screening.reference.index import (
    ReferenceIndex,
    read_examples,
    read_manifest,
    replace_directory,
    staging_for,
)
from core.screening.reference.spec import IndexSpec
from core.screening.text.normalization import normalize

log = structlog.get_logger(__name__)

EMBED_CHUNK = 2048


@dataclass
class ReferenceVectors:
    """The reference index a screening engine loads at start-up, and what it was built from."""

    index: ReferenceIndex
    reference_digest: str
    directory: Path  # the embedded vectors (and, under built/, the approximate indexes)
    index_directory: Path | None = None  # the built index loaded, where the type is not flat


def _slug(name: str) -> str:
    """A file-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def embed_reference(embedder: Embedder, reference: ReferenceSet) -> npt.NDArray[np.float32]:
    """Embed every reference text (normalised, as at screening time), logging progress."""
    vectors = np.zeros((len(reference), embedder.dim), dtype=np.float32)
    started = time.monotonic()
    for start in range(0, len(reference), EMBED_CHUNK):
        chunk = reference.texts[start : start + EMBED_CHUNK]
        vectors[start : start + len(chunk)] = embedder.encode([normalize(t) for t in chunk])
        log.info(
            "embedding_reference_set",
            done=start + len(chunk),
            total=len(reference),
            seconds=round(time.monotonic() - started, 1),
        )
    return vectors


def build_manifest(spec: IndexSpec, rows: int, dim: int, digest: str, model: str) -> dict[str, Any]:
    """What a built index's manifest must say to be the one this spec and reference set want."""
    return {
        "type": spec.kind,
        "factory": spec.factory(rows, dim),
        "nlist": spec.lists(rows) if spec.inverted else None,
        "ntotal": rows,
        "reference_digest": digest,
        "model": model,
    }


def is_current(found: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether a built index's manifest matches every field this build wants."""
    return found is not None and all(found.get(key) == value for key, value in wanted.items())


def _is_built(built: Path, wanted: dict[str, Any]) -> bool:
    """Whether `built` holds a whole index whose manifest matches `wanted`."""
    return (built / "index.faiss").exists() and is_current(read_manifest(built), wanted)


def load_or_build(
    directory: Path, spec: IndexSpec, digest: str, model: str
) -> tuple[ReferenceIndex, Path]:
    """The built index of this type over the vectors in `directory`, built first if missing or
    stale; returns it and where it lies."""
    # Only the shape: a worker whose built index is current never reads the exact vectors.
    rows, dim = np.load(directory / "vectors.npy", mmap_mode="r").shape
    built = directory / "built" / spec.build_name(rows, dim)
    wanted = build_manifest(spec, rows, dim, digest, model)
    if not _is_built(built, wanted):
        started = time.monotonic()
        log.info("building_reference_index", type=spec.kind, factory=wanted["factory"], rows=rows)
        ids, labels = read_examples(directory)
        index = ReferenceIndex(np.load(directory / "vectors.npy"), ids, labels, spec)
        staging = staging_for(built)
        index.save(staging, {**wanted, "built_s": round(time.monotonic() - started, 1)})
        if _is_built(built, wanted):  # another worker built it meanwhile: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
        else:
            # Stale (built from other vectors): no worker loads it, so it can go.
            shutil.rmtree(built, ignore_errors=True)
            replace_directory(staging, built)
        log.info("built_reference_index", type=spec.kind, seconds=round(time.monotonic() - started))
    return ReferenceIndex.load(built, spec), built


def load_or_embed(
    root: Path, embedder: Embedder, reference: ReferenceSet, spec: IndexSpec | None = None
) -> ReferenceVectors:
    """Load the index for this model, reference set and index type, building what is missing."""
    digest = reference.digest()
    directory = root / "index" / f"{_slug(embedder.name)}-{digest}"
    if not (directory / "vectors.npy").exists():
        log.info("embedding_reference_index", directory=str(directory), examples=len(reference))
        vectors = embed_reference(embedder, reference)
        staging = staging_for(directory)
        ReferenceIndex(vectors, reference.ids, reference.labels).save(staging)
        replace_directory(staging, directory)
    spec = spec or IndexSpec()
    if spec.exact:
        return ReferenceVectors(ReferenceIndex.load(directory), digest, directory)
    index, built = load_or_build(directory, spec, digest, embedder.name)
    return ReferenceVectors(index, digest, directory, built)
