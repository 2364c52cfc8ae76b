"""`make bench-screen`: the screening engine against the raw encoder, in one run.

Ceilings: ONNX Runtime encoding the same texts in batches of 100 with the engine's own model file
(tokenizer, session.run, nothing else: what screening could reach if embedding were all it did),
and SentenceTransformer.encode of the same model (what a team would get from the library as is).
Then the engine on batches of 100 with a cold embedding cache (every text a miss) and a warm one
(every text a hit), the rules alone and the index search alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import save
from core.logs import configure_logging
from core.screening.engine import ScreenItem, load_engine
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.text.normalization import normalize
from core.settings import Settings
from core.stream import connect
from devtools.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
BATCH = 100


def tweet_texts(count: int, seed: int = 0) -> list[str]:
    """Tweet-length texts (at most 280 characters) from the shipped reference set."""
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    texts = sorted({t for t in reference.texts if 20 <= len(t) <= 280})
    random.Random(seed).shuffle(texts)
    return texts[:count]


def rate(count: int, seconds: float) -> float:
    """Items per second, rounded."""
    return round(count / seconds, 1)


def sentence_transformers_ceiling(texts: list[str], threads: int) -> float:
    """Texts/s of SentenceTransformer.encode (fp32, CPU) on the same texts, at the better of its
    default batch size (32) and ours (100)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from core.screening.embedding import resolve_model

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2")[1]), device="cpu")
    model.encode(texts[:BATCH], batch_size=BATCH)  # warm-up
    rates = []
    for batch_size in (32, BATCH):
        started = time.perf_counter()
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        rates.append(rate(len(texts), time.perf_counter() - started))
    return max(rates)


def onnx_batched_ceiling(settings: Settings, texts: list[str]) -> float | None:
    """Texts/s of onnxruntime alone on the engine's model file, batches of BATCH padded to their
    longest text; None where the engine does not run ONNX (a GPU host's torch path)."""
    import onnxruntime as ort

    from core.screening.embedding import read_model_spec, resolve_model
    from core.screening.embedding.model import load_tokenizer, prepare_texts
    from core.screening.embedding.onnx_export import ensure_onnx

    if settings.embed_backend not in {"auto", "onnx", "onnx-int8", "onnx-fp32"}:
        return None
    model_id, path = resolve_model(settings.embed_model)
    spec = read_model_spec(path, model_id)
    precision = "fp32" if settings.embed_backend == "onnx-fp32" else "int8"
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.embed_threads or 0
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(ensure_onnx(spec, settings.model_dir, precision)),
        options,
        providers=["CPUExecutionProvider"],
    )
    names = {node.name for node in session.get_inputs()}
    tokenizer, pad_id = load_tokenizer(spec)
    tokenizer.enable_padding(pad_id=pad_id)
    prepared = prepare_texts([normalize(t) for t in texts], spec.prefix, spec.do_lower_case)

    def encode(batch: list[str]) -> None:
        encodings = tokenizer.encode_batch(batch)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        session.run(["embedding"], {k: v for k, v in feed.items() if k in names})

    encode(prepared[:BATCH])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(prepared), BATCH):
        encode(prepared[start : start + BATCH])
    return rate(len(texts), time.perf_counter() - started)


def add_ceilings(
    report: dict[str, Any], settings: Settings, texts: list[str], threads: int
) -> None:
    """Measure both ceilings on the same texts and add them, and the engine's ratios to them."""
    onnx_ceiling = onnx_batched_ceiling(settings, texts)
    if onnx_ceiling is not None:
        report["onnx_batched_encode_texts_per_s"] = onnx_ceiling
        cold, warm = (report[f"engine_{k}_cache_events_per_s"] for k in ("cold", "warm"))
        report["ratio_cold_over_onnx_batched"] = round(cold / onnx_ceiling, 3)
        report["ratio_warm_over_onnx_batched"] = round(warm / onnx_ceiling, 3)
    report["sentence_transformers_encode_texts_per_s"] = sentence_transformers_ceiling(
        texts, threads
    )
    ceiling = report["sentence_transformers_encode_texts_per_s"]
    report["ratio_cold_over_encode"] = round(report["engine_cold_cache_events_per_s"] / ceiling, 3)
    report["ratio_warm_over_encode"] = round(report["engine_warm_cache_events_per_s"] / ceiling, 3)


def main() -> None:
    """Run every measurement and print/write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    options = parser.parse_args()
    configure_logging("WARNING")
    threads = os.cpu_count() or 1
    texts = tweet_texts(options.texts)
    work = OUT / "screen"
    shutil.rmtree(work, ignore_errors=True)
    store = RedisServer(work / "redis")
    store.start()
    client = connect(store.url, 5.0)
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {threads} cores",
        "texts": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
    }
    try:
        settings = Settings(redis_url=store.url)
        engine = load_engine(settings, client)
        report["model"] = engine.embedder.name
        batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]

        def run_engine() -> float:
            started = time.perf_counter()
            for batch in batches:
                engine.screen([ScreenItem(text=t) for t in batch])
            return rate(len(texts), time.perf_counter() - started)

        engine.screen([ScreenItem(text="warm-up text number one"), ScreenItem(text="and two")])
        client.flushall()
        report["engine_cold_cache_events_per_s"] = run_engine()
        report["engine_warm_cache_events_per_s"] = run_engine()
        report["stage_seconds_cold_and_warm"] = {
            k: round(v, 3) for k, v in engine.times.totals.items()
        }

        ruleset = engine.rules.current()
        started = time.perf_counter()
        for text in texts:
            ruleset.evaluate(text, normalize(text))
        report["rules_alone_texts_per_s"] = rate(len(texts), time.perf_counter() - started)

        vectors = engine.embedder.encode([normalize(t) for t in texts])
        started = time.perf_counter()
        for start in range(0, len(vectors), BATCH):
            engine.index.search(vectors[start : start + BATCH], engine.scoring.neighbours)
        report["index_search_queries_per_s"] = rate(len(vectors), time.perf_counter() - started)
        report["index_size"] = len(engine.index)
    finally:
        client.close()
        store.stop()
    add_ceilings(report, settings, texts, threads)
    save("screen", report, OUT)
    width = max(len(key) for key in report)
    lines = [f"{key:<{width}}  {value}" for key, value in report.items()]
    lines += [
        "target: ratio_cold_over_onnx_batched >= 0.80, warm unchanged or better",
        f"written to {OUT / 'screen.json'}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
