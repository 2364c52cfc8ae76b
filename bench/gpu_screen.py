"""Screening throughput on a GPU host, self-contained (no Redis, no registry needed).

    python -m bench.gpu_screen --texts 50000            # on a CUDA machine
    python -m bench.gpu_screen --device cpu --texts 500  # a smoke run anywhere

Measures, on the same texts: sentence-transformers' own encode (fp16, batch 1024) as the
reference, the project's TorchEmbedder (fast tokenizer, length-sorted batches, fp16, a thread
tokenising ahead), and the whole screening path per batch: normalisation and rules in a pool
of processes, embedding on the GPU, neighbour search and the head. The reference examples come
from core/screening/data/reference; the model from the MODEL environment variable or the packaged
all-MiniLM-L6-v2 (a directory holding a sentence-transformers model also works, e.g. one
converted to fp16 to halve its size, as scripts/gpu_bundle.sh does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.screening.embedding import load_embedder
from core.screening.engine import ScreeningEngine, ScreenItem
from core.screening.reference.dataset import ReferenceSet
from core.screening.reference.index import ReferenceIndex
from core.screening.rules import DEFAULT_RULES_PATH, RuleFile, RuleSet
from core.screening.scoring.bundle import ModelBundle
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig
from core.screening.scoring.scores import rule_scores
from core.screening.text.normalization import normalize

_RULES: RuleSet | None = None


def _rule_parts(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Normalise and apply the rules to a chunk of texts (runs in a pool process)."""
    global _RULES  # noqa: PLW0603 - one loaded rule set per pool process
    if _RULES is None:
        _RULES = RuleSet.load(DEFAULT_RULES_PATH)
    normalized = [normalize(t) for t in texts]
    hits = [_RULES.evaluate(t, n) for t, n in zip(texts, normalized, strict=True)]
    per, overall = rule_scores(hits)
    return normalized, per, overall


def timed(label: str, results: dict[str, Any], count: int, work: Any) -> Any:
    """Run `work`, record count/seconds under `label`, and return its result."""
    started = time.perf_counter()
    value = work()
    seconds = time.perf_counter() - started
    results[label] = round(count / seconds, 1)
    sys.stdout.write(f"{label:<44} {results[label]:>10} /s\n")
    sys.stdout.flush()
    return value


def measure_encoders(
    model: str, texts: list[str], options: argparse.Namespace, results: dict[str, Any]
) -> Any:
    """Sentence-transformers' encode against the project's TorchEmbedder; returns the latter."""
    import torch
    from sentence_transformers import SentenceTransformer

    from core.screening.embedding import resolve_model

    reference_model = SentenceTransformer(str(resolve_model(model)[1]), device=options.device)
    if options.device.startswith("cuda"):
        reference_model.half()
        results["gpu"] = torch.cuda.get_device_name(0)

    def encode() -> Any:
        return reference_model.encode(texts, batch_size=options.batch, normalize_embeddings=True)

    reference_model.encode(texts[: options.batch], batch_size=options.batch)
    timed("sentence-transformers encode (reference)", results, len(texts), encode)
    embedder = load_embedder(model, "torch", options.device, options.batch)
    embedder.encode(texts[: options.batch])
    timed("TorchEmbedder encode", results, len(texts), lambda: embedder.encode(texts))
    return embedder


def build_engine(
    embedder: Any, reference: ReferenceSet, examples: int, seed: int = 0
) -> ScreeningEngine:
    """An engine over a random sample of the reference set, with the shipped head and blender."""
    rng = np.random.default_rng(seed)
    sample = reference.select(rng.random(len(reference)) < examples / len(reference))
    vectors = embedder.encode([normalize(t) for t in sample.texts])
    bundle = ModelBundle.load()
    return ScreeningEngine(
        embedder,
        index=ReferenceIndex(vectors, sample.ids, sample.labels),
        head=bundle.head,
        blender=bundle.blender,
        profanity=bundle.profanity,
        rules=RuleFile(DEFAULT_RULES_PATH),
        scoring=ScoringConfig.load(DEFAULT_SCORING_PATH),
        reference_digest="bench",
    )


def measure_engine(
    engine: ScreeningEngine, texts: list[str], options: argparse.Namespace, results: dict[str, Any]
) -> None:
    """The whole path in one process, then with rules in a process pool ahead of the GPU."""
    batches = [texts[i : i + options.batch] for i in range(0, len(texts), options.batch)]

    def one_process() -> None:
        for batch in batches:
            engine.screen([ScreenItem(text=t) for t in batch])

    timed("engine.screen, one process", results, len(texts), one_process)
    results["engine_stage_seconds"] = {k: round(v, 3) for k, v in engine.times.totals.items()}
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    with ProcessPoolExecutor(options.rule_processes) as pool:
        list(pool.map(_rule_parts, chunks[: options.rule_processes]))  # start the workers
        label = f"normalise + rules ({options.rule_processes} processes)"
        timed(label, results, len(texts), lambda: list(pool.map(_rule_parts, chunks)))

        def pipelined() -> None:
            """Rules for batch i+1 run in the pool while batch i is embedded and searched."""
            pending = pool.submit(_rule_parts, batches[0])
            for i in range(len(batches)):
                normalized, _per, _overall = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(_rule_parts, batches[i + 1])
                engine.index.search(engine.embedder.encode(normalized), 10)

        timed("pipelined: pool rules + embed + search", results, len(texts), pipelined)


def main() -> None:
    """Measure, print, and write gpu_screen.json under --out."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rule-processes", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--reference-examples", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "var/bench")))
    options = parser.parse_args()
    model = os.environ.get("MODEL", "all-MiniLM-L6-v2")
    reference = ReferenceSet.load()
    pool_texts = [t for t in reference.texts if len(t) <= 280]
    picks = np.random.default_rng(0).integers(0, len(pool_texts), options.texts)
    texts = [pool_texts[i] for i in picks]
    results: dict[str, Any] = {
        "texts": len(texts),
        "batch": options.batch,
        "device": options.device,
    }
    embedder = measure_encoders(model, texts, options, results)
    engine = build_engine(embedder, reference, options.reference_examples)
    measure_engine(engine, texts, options, results)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "gpu_screen.json").write_text(json.dumps(results, indent=2))
    sys.stdout.write(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
