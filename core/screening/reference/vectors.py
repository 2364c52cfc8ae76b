"""The reference set's vectors, embedded once per (model, reference set) and kept under var/.

Embedding the reference set takes minutes on a CPU, so it is done once and kept on disk (the
head and blender ship as trained weights, see `core.screening.scoring.bundle`). The vectors are
written to a temporary directory first and renamed into place, so two workers starting at once
never read half an index.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from core.screening.embedding import Embedder
from core.screening.reference.dataset import ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.text.normalization import normalize

log = structlog.get_logger(__name__)

EMBED_CHUNK = 2048


@dataclass
class ReferenceVectors:
    """The reference index a screening engine loads at start-up, and what it was built from."""

    index: ReferenceIndex
    reference_digest: str
    directory: Path


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


def load_or_embed(root: Path, embedder: Embedder, reference: ReferenceSet) -> ReferenceVectors:
    """Load the index for this model and reference set, building it if it is missing."""
    digest = reference.digest()
    directory = root / "index" / f"{_slug(embedder.name)}-{digest}"
    if not (directory / "vectors.npy").exists():
        log.info("building_reference_index", directory=str(directory), examples=len(reference))
        vectors = embed_reference(embedder, reference)
        staging = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        ReferenceIndex(vectors, reference.ids, reference.labels).save(staging)
        try:
            staging.rename(directory)
        except OSError:  # another process finished first; its copy is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
    index = ReferenceIndex.load(directory)
    return ReferenceVectors(index, digest, directory)
