"""The labelled reference examples, their vectors and the index that finds a text's neighbours.

`ReferenceSet` is the shipped labelled set (or any CSV); `load_or_embed` embeds it once per model
under var/; `ReferenceIndex` searches the vectors (in the FAISS index type an `IndexSpec` names)
and turns the neighbours into votes.
"""

from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.reference.spec import PRESETS, IndexSpec
from core.screening.reference.vectors import ReferenceVectors, embed_reference, load_or_embed

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "PRESETS",
    "IndexSpec",
    "ReferenceIndex",
    "ReferenceSet",
    "ReferenceVectors",
    "embed_reference",
    "load_or_embed",
]
