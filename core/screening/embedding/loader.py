"""Choosing and loading an embedder: "auto" is torch fp16 on CUDA and int8 ONNX on a CPU."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from core.errors import ConfigError
from core.screening.embedding.backends import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    TorchEmbedder,
)
from core.screening.embedding.model import (
    PACKAGED_MODEL,
    Embedder,
    ModelSpec,
    read_model_spec,
    resolve_model,
    text_prefix,
)
from core.screening.embedding.onnx_export import ensure_onnx

log = structlog.get_logger(__name__)

BACKENDS = frozenset({"auto", "torch", "onnx", "onnx-int8", "onnx-fp32", "sentence-transformers"})


def resolve_device(device: str) -> str:
    """Turn "auto" into "cuda" when torch sees a GPU, else "cpu"; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _onnx_embedder(
    spec: ModelSpec, precision: str, batch_size: int, threads: int | None, cache_dir: Path
) -> OnnxEmbedder:
    """Export (or reuse the cached export of) a model and open it with onnxruntime."""
    model_file = ensure_onnx(spec, cache_dir, precision)
    return OnnxEmbedder(spec, model_file, precision, batch_size, threads)


def load_embedder(  # noqa: PLR0917 - the documented positional signature
    model: str = PACKAGED_MODEL,
    backend: str = "auto",
    device: str = "auto",
    batch_size: int = 128,
    threads: int | None = None,
    cache_dir: Path = Path("var/models"),
) -> Embedder:
    """Load a model and return the Embedder for it; "auto" is torch fp16 on CUDA, else ONNX int8."""
    if backend not in BACKENDS:
        raise ConfigError(f"embedding backend {backend!r} is not one of {sorted(BACKENDS)}")
    if batch_size < 1:
        raise ConfigError("embedding batch_size must be at least 1")
    started = time.perf_counter()
    model_id, path = resolve_model(model)
    spec = read_model_spec(path, model_id, text_prefix(model))
    embedder: Embedder
    if backend in {"onnx", "onnx-int8", "onnx-fp32"}:
        if not spec.native:
            raise ConfigError(f"{model!r}: its module layout cannot be exported; use backend=torch")
        precision = "fp32" if backend == "onnx-fp32" else "int8"
        embedder = _onnx_embedder(spec, precision, batch_size, threads, cache_dir)
    else:
        target = resolve_device(device)
        embedder = _torch_or_onnx(
            spec,
            backend,
            device=target,
            batch_size=batch_size,
            threads=threads,
            cache_dir=cache_dir,
        )
    log.info(
        "embedding.loaded",
        embedder=embedder.name,
        dim=embedder.dim,
        batch_size=batch_size,
        seconds=round(time.perf_counter() - started, 2),
    )
    return embedder


def _torch_or_onnx(
    spec: ModelSpec,
    backend: str,
    *,
    device: str,
    batch_size: int,
    threads: int | None,
    cache_dir: Path,
) -> Embedder:
    """Pick the backend for "auto", "torch" and "sentence-transformers" on a resolved device."""
    if backend == "sentence-transformers" or not spec.native:
        if backend != "sentence-transformers":
            log.info("embedding.fallback", model=spec.model_id, reason="module layout not native")
        return SentenceTransformerEmbedder(spec, device, batch_size, threads)
    if backend == "auto" and not device.startswith("cuda"):
        try:
            return _onnx_embedder(spec, "int8", batch_size, threads, cache_dir)
        except Exception as exc:  # an export failure must not stop the worker
            log.warning("embedding.onnx_unavailable", model=spec.model_id, error=repr(exc))
    return TorchEmbedder(spec, device, batch_size, threads)
