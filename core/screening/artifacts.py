"""Build-once artefacts under var/: the embedded reference index and the trained head.

Embedding the reference set takes minutes on a CPU, so it is done once per (model, reference
set) and kept on disk; the head is retrained only when the rules change. Both are written to a
temporary directory or file first and renamed into place, so two workers starting at once never
read half an artefact.
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

from core.models import CATEGORIES
from core.screening.embedding import Embedder
from core.screening.head import LinearHead, head_features
from core.screening.normalize import normalize
from core.screening.reference import ReferenceIndex, ReferenceSet
from core.screening.rules import RuleSet
from core.screening.scoring import rule_scores

log = structlog.get_logger(__name__)

# Bump when the head's training recipe changes, so cached heads are retrained.
HEAD_RECIPE = "lr-c1-source-balanced-v1"
EMBED_CHUNK = 2048


@dataclass
class Artifacts:
    """What a screening engine loads at start-up."""

    index: ReferenceIndex
    head: LinearHead
    reference_digest: str
    directory: Path


def _slug(name: str) -> str:
    """A file-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def source_balanced_weights(sources: list[str]) -> npt.NDArray[np.float64]:
    """Sample weights giving every source the same total weight, with mean 1.

    Without them the 25k-tweet davidson set (77% offensive) would dictate what the head calls
    harmful; with them each source's notion counts once, which generalises better to sources we
    do not have (measured by leave-one-source-out evaluation).
    """
    names, inverse, counts = np.unique(np.array(sources), return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse].astype(np.float64)
    return weights * (len(weights) / weights.sum()) if len(names) else weights


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


def train_head(
    vectors: npt.NDArray[np.float32], reference: ReferenceSet, rules: RuleSet
) -> LinearHead:
    """Fit the head on the reference set's embeddings and rule scores."""
    hits = [rules.evaluate(text, normalize(text)) for text in reference.texts]
    per_category, _overall = rule_scores(hits)
    return LinearHead.fit(
        head_features(vectors, per_category),
        reference.label_indices(),
        len(CATEGORIES),
        sample_weight=source_balanced_weights(reference.sources),
    )


def load_or_build(
    root: Path, embedder: Embedder, reference: ReferenceSet, rules: RuleSet
) -> Artifacts:
    """Load the artefacts for this model, reference set and rules, building what is missing."""
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
    head_path = directory / f"head-{HEAD_RECIPE}-{rules.version}.npz"
    if not head_path.exists():
        log.info("training_head", path=str(head_path))
        vectors = np.ascontiguousarray(index.vectors(), dtype=np.float32)
        head = train_head(vectors, reference, rules)
        staging_file = head_path.with_name(f".{head_path.name}.tmp-{os.getpid()}")
        head.save(staging_file)
        staging_file.replace(head_path)
    return Artifacts(index, LinearHead.load(head_path), digest, directory)
