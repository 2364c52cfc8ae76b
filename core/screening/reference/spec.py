"""Which FAISS index the reference vectors go into: named presets of index-factory strings.

Every preset is an inner-product index over L2-normalised vectors, built by `faiss.index_factory`
from a factory string; the IVF presets pick their number of lists from the row count the way the
FAISS wiki's "Guidelines to choose an index" do (4·√n below a million vectors, then 65,536, 262,144
and 1,048,576 lists for 1M-10M, 10M-100M and 100M-1B), never fewer than 39 training vectors per list
(below that faiss's k-means warns that its centroids are noise).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from core.errors import ConfigError

# preset -> factory string; {nlist} is the number of inverted lists, {pq} the PQ sub-quantizers
# and {bits} the bits of each PQ code.
PRESETS: dict[str, str] = {
    "flat": "Flat",
    "hnsw": "HNSW32,Flat",
    "ivf-hnsw": "IVF{nlist}_HNSW32,Flat",
    "ivf-sq8": "IVF{nlist}_HNSW32,SQ8",
    # np: no polysemous training (only for Hamming pre-filtering, which search does not use; it
    # made a build of the 70k shipped vectors take 414 s instead of 78 s).
    "ivf-pq": "IVF{nlist}_HNSW32,PQ{pq}x{bits}np",
}
MIN_POINTS_PER_LIST = 39  # faiss's k-means warns below this many training points per centroid
DIMS_PER_PQ_CODE = 4  # 384 dims -> 96 one-byte codes a vector


def default_nlist(rows: int) -> int:
    """The FAISS wiki's number of inverted lists for `rows` vectors, bounded by the training set."""
    if rows < 1_000_000:
        wanted = 1 << max(0, round(math.log2(max(1.0, 4 * math.sqrt(rows)))))
    elif rows < 10_000_000:
        wanted = 65_536
    elif rows < 100_000_000:
        wanted = 262_144
    else:
        wanted = 1_048_576
    trainable = max(1, rows // MIN_POINTS_PER_LIST)
    return max(1, min(wanted, 1 << (trainable.bit_length() - 1)))


@dataclass(frozen=True)
class IndexSpec:
    """A preset and its parameters: what to build (kind, nlist) and how to search (nprobe, ef)."""

    kind: str = "flat"
    nlist: int | None = None  # None: from the row count (default_nlist)
    nprobe: int = 32
    ef_search: int = 64

    def __post_init__(self) -> None:
        if self.kind not in PRESETS:
            raise ConfigError(
                f"unknown reference index type {self.kind!r}; choose one of {', '.join(PRESETS)}"
            )
        if self.nlist is not None and self.nlist < 1:
            raise ConfigError(f"reference index nlist must be at least 1, not {self.nlist}")
        if self.nprobe < 1 or self.ef_search < 1:
            raise ConfigError("reference index nprobe and efSearch must be at least 1")

    @property
    def exact(self) -> bool:
        """Whether this is the exact (flat) index."""
        return self.kind == "flat"

    @property
    def inverted(self) -> bool:
        """Whether the type has inverted lists (an IVF coarse quantizer)."""
        return "{nlist}" in PRESETS[self.kind]

    def lists(self, rows: int) -> int:
        """The number of inverted lists for `rows` vectors (configured or from the row count)."""
        return self.nlist if self.nlist is not None else default_nlist(rows)

    def factory(self, rows: int, dim: int) -> str:
        """The faiss index-factory string for `rows` vectors of `dim` dimensions."""
        return PRESETS[self.kind].format(
            nlist=self.lists(rows), pq=pq_codes(dim), bits=pq_bits(rows)
        )

    def search_parameters(self) -> dict[str, int]:
        """faiss ParameterSpace settings applied after loading (search-time only, no rebuild)."""
        if self.kind == "flat":
            return {}
        if self.kind == "hnsw":
            return {"efSearch": self.ef_search}
        # The HNSW coarse quantizer must return at least nprobe lists.
        return {"nprobe": self.nprobe, "quantizer_efSearch": max(self.ef_search, 2 * self.nprobe)}

    def build_name(self, rows: int, dim: int) -> str:
        """A file-name-safe name of what is built: the preset and a hash of its factory string."""
        factory = self.factory(rows, dim)
        return f"{self.kind}-{hashlib.blake2b(factory.encode(), digest_size=4).hexdigest()}"


def pq_codes(dim: int) -> int:
    """PQ sub-quantizers for `dim` dimensions: DIMS_PER_PQ_CODE each (a divisor of dim)."""
    wanted = max(1, dim // DIMS_PER_PQ_CODE)
    while dim % wanted:
        wanted -= 1
    return wanted


def pq_bits(rows: int) -> int:
    """Bits of each PQ code: 8 (256 centroids per sub-quantizer), fewer where `rows` are too few
    to train 256 (MIN_POINTS_PER_LIST each)."""
    return max(1, min(8, (rows // MIN_POINTS_PER_LIST).bit_length() - 1))
