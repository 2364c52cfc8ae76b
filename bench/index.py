"""`make bench-index`: each REFERENCE_INDEX type against the exact flat index, in one run.

On the shipped reference vectors (those `make index` embedded): each type is built on all but
`--held-out` of them, and those held-out vectors are the queries. Then at scale, on `--rows`
synthetic 384-d unit vectors: by default drawn around the shipped vectors (each a shipped vector
plus Gaussian noise, renormalised: clusters shaped like the real ones), or `--synthetic random`
(uniform on the sphere: the worst case of every approximate index, whose neighbours are all
nearly equidistant). For each type: recall@10 against flat on the same queries, the faiss index's
serialized size per vector, build seconds, and search time per query in batches of 100 (the
engine's batch), median of five runs, next to flat's in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.report import save
from core.logs import configure_logging
from core.models import Category
from core.screening.engine import configured_embedder
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.reference.spec import PRESETS, IndexSpec
from core.screening.reference.vectors import load_or_embed
from core.settings import Settings

BATCH = 100
K = 10
RUNS = 5

Vectors = npt.NDArray[np.float32]


def say(text: str) -> None:
    """Print a line of progress."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def recall(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    """The share of the exact top-k found by the approximate search, over every query."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return round(hits / truth.size, 4)


def search_ms(index: ReferenceIndex, queries: Vectors) -> float:
    """Milliseconds a query, searching in batches of 100, median of RUNS runs."""
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for start in range(0, len(queries), BATCH):
            index.search(queries[start : start + BATCH], K)
        runs.append((time.perf_counter() - started) / len(queries) * 1000)
    return round(float(np.median(runs)), 4)


def measure(
    spec: IndexSpec, vectors: Vectors, queries: Vectors, truth: npt.NDArray[np.int64] | None
) -> tuple[dict[str, Any], npt.NDArray[np.int64]]:
    """Build one type over `vectors` and measure it on `queries` (truth: flat's top-k)."""
    labels = [Category.LOW_RISK] * len(vectors)
    started = time.perf_counter()
    index = ReferenceIndex(vectors, [str(i) for i in range(len(vectors))], labels, spec)
    built = time.perf_counter() - started
    _, found = index.search(queries, K)
    figures: dict[str, Any] = {
        "factory": spec.factory(len(vectors), vectors.shape[1]),
        "search": spec.search_parameters(),
        "build_s": round(built, 2),
        "bytes_per_vector": round(index.serialized_bytes() / len(index), 1),
        "search_ms_per_query": search_ms(index, queries),
        f"recall_at_{K}": 1.0 if truth is None else recall(found, truth),
    }
    # Runtime examples: the queries themselves, added after the build, must be found at once.
    index.add(queries, [f"added{i}" for i in range(len(queries))], [Category.SPAM] * len(queries))
    _, positions = index.search(queries, 1)
    figures["added_found_first"] = round(
        float(np.mean(positions[:, 0] == np.arange(len(queries)) + len(vectors))), 4
    )
    return figures, found


def compare(
    kinds: list[str], vectors: Vectors, queries: Vectors, spec: dict[str, int]
) -> dict[str, Any]:
    """Flat first (the truth and the ceiling), then each type, with its ratios to flat."""
    flat, truth = measure(IndexSpec(), vectors, queries, None)
    say(f"  flat: {flat}")
    results: dict[str, Any] = {"flat": flat}
    for kind in kinds:
        if kind == "flat":
            continue
        figures, _ = measure(IndexSpec(kind, **spec), vectors, queries, truth)
        figures["search_time_over_flat"] = round(
            figures["search_ms_per_query"] / flat["search_ms_per_query"], 4
        )
        figures["memory_over_flat"] = round(
            figures["bytes_per_vector"] / flat["bytes_per_vector"], 4
        )
        say(f"  {kind}: {figures}")
        results[kind] = figures
    return results


def synthetic(rows: int, dim: int, centres: Vectors | None, noise: float, seed: int) -> Vectors:
    """Unit vectors: around random centres (the shipped vectors) or, without, uniform."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        chunk = rng.standard_normal((count, dim), dtype=np.float32)
        if centres is not None:
            chunk *= noise / np.sqrt(dim)
            chunk += centres[rng.integers(0, len(centres), count)]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + count] = chunk
    return out


def main() -> None:
    """Measure on the shipped vectors, then at scale, and write var/bench/index.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--types", default=",".join(PRESETS), help="comma-separated types")
    parser.add_argument("--held-out", type=int, default=1000, help="shipped vectors as queries")
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic vectors; 0: none")
    parser.add_argument("--queries", type=int, default=1000, help="synthetic queries")
    parser.add_argument("--synthetic", choices=("reference", "random"), default="reference")
    parser.add_argument("--noise", type=float, default=0.6, help="around each shipped vector")
    parser.add_argument("--nlist", type=int, help="inverted lists at scale; default from rows")
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--ef-search", type=int, default=64)
    options = parser.parse_args()
    configure_logging("WARNING")
    settings = Settings()
    kinds = [kind.strip() for kind in options.types.split(",") if kind.strip()]
    for kind in kinds:
        IndexSpec(kind)  # an unknown type fails here, before any work
    reference = ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH)
    shipped = load_or_embed(settings.var_dir, configured_embedder(settings), reference).index
    vectors = shipped.vectors()
    order = np.random.default_rng(0).permutation(len(vectors))
    held, kept = vectors[order[: options.held_out]], vectors[order[options.held_out :]]
    search = {"nprobe": options.nprobe, "ef_search": options.ef_search}
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "k": K,
        "batch": BATCH,
        "search": search,
    }
    say(f"shipped vectors: {len(kept)} indexed, {len(held)} held-out queries")
    report["shipped"] = {
        "rows": len(kept),
        "queries": len(held),
        "types": compare(kinds, kept, held, search),
    }
    if options.rows:
        centres = vectors if options.synthetic == "reference" else None
        rows = synthetic(options.rows, vectors.shape[1], centres, options.noise, seed=1)
        queries = synthetic(options.queries, vectors.shape[1], centres, options.noise, seed=2)
        say(f"synthetic ({options.synthetic}): {len(rows)} vectors, {len(queries)} queries")
        at_scale = {**search, "nlist": options.nlist}
        report["scale"] = {
            "rows": len(rows),
            "queries": len(queries),
            "synthetic": options.synthetic,
            "noise": options.noise if centres is not None else None,
            "types": compare(kinds, rows, queries, at_scale),
        }
    say(f"written to {save('index', report)}")


if __name__ == "__main__":
    main()
