"""ONNX export and int8 quantisation of an embedding model, cached on disk by a hash of its files.

The exported graph takes input_ids, attention_mask (and token_type_ids where the model has them)
and returns the pooled, L2-normalised sentence embedding, so onnxruntime does all the arithmetic.
Files land in <cache_dir>/<model-slug>-<hash>/ and are written to a temporary name and renamed, so
two processes starting at once never read a half-written model.

int8 is static: activation scales are fixed once, from a fixed sample of the shipped reference
set, so a text's vector does not depend on the batch it is run in. The int8 file is named by a
hash of the recipe and the calibration texts, so a new calibration is a new model (and a new
embedder name, which keys the reference index and the embedding cache).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import os
import random
import re
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from core.errors import CoreError
from core.screening.embedding.backends import pool_torch
from core.screening.embedding.model import (
    ModelSpec,
    TokenBatch,
    TokenBatches,
    load_tokenizer,
    prepare_texts,
)

if TYPE_CHECKING:
    import torch

log = structlog.get_logger(__name__)

# Bump when the graph or the quantisation recipe changes: it is part of the cache directory name.
EXPORT_VERSION = 1
OPSET = 17
FP32_FILE = "model.onnx"
# Bump when the int8 recipe changes: it is part of the int8 file's (and the embedder's) name.
INT8_RECIPE = "static-u8s8-minmax-v1"
# The shipped reference set (redistributable sources only); a fixed seeded sample calibrates.
CALIBRATION_SET = Path(__file__).parents[1] / "data" / "reference" / "reference.csv.gz"
CALIBRATION_TEXTS = 300
CALIBRATION_SEED = 0
_HASHED_SUFFIXES = frozenset({".json", ".txt", ".safetensors", ".bin", ".model", ".py"})
_SKIPPED_DIRS = frozenset({"onnx", "openvino", ".git", ".cache"})
# Texts of different lengths, so the traced graph sees padding and keeps the mask path dynamic.
_PROBE_TEXTS = (
    "ok",
    "a somewhat longer sentence, so that the batch has padding in it",
    "Go home you're drunk!!! 👊 #MAGA URL",
)


class ExportError(CoreError):
    """The model could not be exported to ONNX, or the export does not reproduce the model."""


def model_fingerprint(path: Path) -> str:
    """Return a short blake2b hash of a model's weights, configs and tokenizer files."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"export-v{EXPORT_VERSION}-opset{OPSET}".encode())
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if not file.is_file() or file.suffix not in _HASHED_SUFFIXES:
            continue
        if _SKIPPED_DIRS.intersection(relative.parts[:-1]):
            continue
        digest.update(str(relative.as_posix()).encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def export_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    """Return the cache directory of a model's exports: <cache_dir>/<model-slug>-<hash>."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.model_id).strip("-") or "model"
    return cache_dir / f"{slug}-{model_fingerprint(spec.path)}"


def ensure_onnx(spec: ModelSpec, cache_dir: Path, precision: str = "int8") -> Path:
    """Return the ONNX file of a model at a precision (fp32 or int8), exporting it only once."""
    if precision not in {"fp32", "int8"}:
        raise ValueError(f"unknown ONNX precision {precision!r}")
    directory = export_dir(spec, cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fp32 = directory / FP32_FILE
    if not fp32.is_file():
        started = time.perf_counter()
        with _atomic(fp32) as temporary:
            export_fp32(spec, temporary)
        log.info("onnx.exported", file=str(fp32), seconds=round(time.perf_counter() - started, 1))
    if precision == "fp32":
        return fp32
    texts = calibration_texts()
    int8 = directory / int8_file_name(texts)
    if not int8.is_file():
        started = time.perf_counter()
        with _atomic(int8) as temporary:
            quantise_int8(spec, fp32, temporary, texts)
        log.info("onnx.quantised", file=str(int8), seconds=round(time.perf_counter() - started, 1))
    return int8


def calibration_texts(
    path: Path = CALIBRATION_SET, count: int = CALIBRATION_TEXTS, seed: int = CALIBRATION_SEED
) -> list[str]:
    """A fixed seeded sample of a reference CSV's texts, normalised as screening normalises them."""
    from core.screening.text.normalization import normalize

    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        texts = sorted({row["text"] for row in csv.DictReader(handle)})
    random.Random(seed).shuffle(texts)
    return [normalize(text) for text in texts[:count]]


def int8_file_name(texts: Sequence[str]) -> str:
    """The int8 file of a recipe and calibration sample: model-int8-<recipe hash>.onnx."""
    digest = hashlib.blake2b(INT8_RECIPE.encode(), digest_size=4)
    for text in texts:
        digest.update(text.encode() + b"\0")
    return f"model-int8-s{digest.hexdigest()}.onnx"


@contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside target and rename it onto target once the block succeeds."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _probe_batch(spec: ModelSpec) -> TokenBatch:
    """Tokenise the probe texts into one padded batch."""
    tokenizer, pad_id = load_tokenizer(spec)
    texts = prepare_texts(_PROBE_TEXTS, spec.prefix, spec.do_lower_case)
    return next(iter(TokenBatches(tokenizer, pad_id, len(texts))(texts)))


def _load_for_export(spec: ModelSpec) -> torch.nn.Module:
    """Load the transformer in fp32 with eager attention, which traces to plain ONNX ops."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model = AutoModel.from_pretrained(str(spec.transformer_path), attn_implementation="eager")
    except (TypeError, ValueError):
        model = AutoModel.from_pretrained(str(spec.transformer_path))
    module: torch.nn.Module = model.float().eval()
    return module


def export_fp32(spec: ModelSpec, target: Path) -> None:
    """Trace model + pooling + normalisation to ONNX with dynamic batch and sequence axes."""
    import inspect

    import torch

    transformer = _load_for_export(spec)
    token_types = "token_type_ids" in inspect.signature(transformer.forward).parameters
    mode = spec.pooling or "mean"

    class Pooled(torch.nn.Module):
        """The transformer followed by sentence-transformers pooling and L2 normalisation."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            """Return unit sentence vectors for a padded batch."""
            names = ["input_ids", "attention_mask", "token_type_ids"][: len(inputs)]
            hidden = self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state
            pooled = pool_torch(hidden, inputs[1], mode)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    probe = _probe_batch(spec)
    arrays = [probe.input_ids, probe.attention_mask] + (
        [probe.token_type_ids] if token_types else []
    )
    args = tuple(torch.from_numpy(a) for a in arrays)
    names = ["input_ids", "attention_mask", "token_type_ids"][: len(args)]
    wrapper = Pooled().eval()
    # The reference must be computed before tracing: tracing leaves this model instance unusable
    # for eager inference (seen with transformers 5), though the exported graph is right.
    with torch.inference_mode():
        expected = wrapper(*args).numpy()
    with warnings.catch_warnings():
        # Tracer and deprecation chatter; the graph is checked numerically below instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            args,
            str(target),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={
                **{n: {0: "batch", 1: "sequence"} for n in names},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the dynamo exporter needs onnxscript, and the legacy one is enough here
        )
    _check(target, dict(zip(names, arrays, strict=True)), expected, min_cosine=0.9999)


def _ffn_down_projections(model: Any) -> list[str]:
    """Names of MatMuls whose constant weight narrows (in > out): the feed-forward output layers."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        shape = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
            names.append(node.name)
    return names


class _DropQuantiserNoise(logging.Filter):
    """Drops onnxruntime.quantization's advice-level log lines emitted on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record that does not come from onnxruntime's quantisation package."""
        return "onnxruntime" not in record.pathname or record.levelno >= logging.ERROR


def quantise_int8(spec: ModelSpec, source: Path, target: Path, texts: Sequence[str]) -> None:
    """Write a statically quantised int8 copy of an fp32 ONNX model, calibrated on texts.

    Recipe chosen by measurement on OLID tweets (see docs/screening.md): int8 weights per channel
    and uint8 activations with per-tensor scales fixed by min/max calibration, on the MatMuls with
    constant weights only, keeping the feed-forward down-projections in fp32 (their inputs, GELU
    outputs, have outliers that per-tensor activation scales handle badly). Fixed scales make each
    row's arithmetic independent of the rest of the batch and of padding, which dynamic
    quantisation (scales taken from the whole input tensor) is not.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(source), load_external_data=False)
    constants = {init.name for init in model.graph.initializer}
    excluded = set(_ffn_down_projections(model))
    nodes = [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and node.input[1] in constants and node.name not in excluded
    ]
    tokenizer, pad_id = load_tokenizer(spec)
    prepared = prepare_texts(texts, spec.prefix, spec.do_lower_case)

    class Calibration(CalibrationDataReader):  # type: ignore[misc]
        """Feeds the calibration texts one at a time, unpadded, as the observed activations."""

        def __init__(self) -> None:
            self.batches = iter(TokenBatches(tokenizer, pad_id, 1)(prepared))
            self.inputs = {node.name for node in model.graph.input}

        def get_next(self) -> dict[str, Any] | None:
            """The next text's inputs, or None when all have been fed."""
            batch = next(self.batches, None)
            if batch is None:
                return None
            feed = {
                "input_ids": batch.input_ids,
                "attention_mask": batch.attention_mask,
                "token_type_ids": batch.token_type_ids,
            }
            return {k: v for k, v in feed.items() if k in self.inputs}

    noise = _DropQuantiserNoise()
    logging.getLogger().addFilter(noise)
    try:
        quantize_static(
            str(source),
            str(target),
            Calibration(),
            quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        logging.getLogger().removeFilter(noise)


def _check(
    model_file: Path, feed: dict[str, Any], expected: np.ndarray[Any, Any], min_cosine: float
) -> None:
    """Raise ExportError unless onnxruntime reproduces the expected vectors on the probe batch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["embedding"], feed)
    cosine = float(np.min(np.sum(np.asarray(actual) * expected, axis=1)))
    if not cosine >= min_cosine:
        raise ExportError(
            f"ONNX export of {model_file.name} disagrees with torch (cosine {cosine})"
        )
