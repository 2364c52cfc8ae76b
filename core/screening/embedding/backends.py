"""The embedding backends: torch (fp16 on CUDA), onnxruntime, and sentence-transformers' own
encode for module layouts the native two do not run."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from core.screening.embedding.model import (
    ModelSpec,
    TokenBatch,
    TokenBatches,
    Vectors,
    l2_normalise,
    load_tokenizer,
    prepare_texts,
)

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


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


def prepare_torch(threads: int | None) -> None:
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

        prepare_torch(threads)
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
    """An exported model (pooling and normalisation inside the graph) run by onnxruntime (fp32 or
    static int8) on length-sorted, tightly padded batches of RUN_TEXTS texts, `threads` batches at
    a time on single-threaded runs.

    Batching does not change a text's vector: the attention mask keeps padding out of every real
    token's arithmetic, and static int8 fixes its activation scales at calibration (dynamic int8,
    which takes them from the whole input tensor, moved a text's vector with its batch-mates, to a
    cosine of 0.985 against its solo vector). So the batch size is chosen for speed alone: small
    batches on parallel single-threaded runs encoded tweets 2-4 times faster than batches of 100
    on intra-op threads (int8: 184-209 texts/s at 4 texts a run against 32-62 at 100, 2 cores),
    since less is spent on padding, on attention over long rows and on syncing intra-op threads.
    """

    RUN_TEXTS = 4

    def __init__(
        self,
        spec: ModelSpec,
        model_file: Path,
        precision: str,
        batch_size: int,
        threads: int | None,
    ) -> None:
        import onnxruntime as ort

        workers = threads or len(os.sched_getaffinity(0))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {node.name for node in self.session.get_inputs()}
        tokenizer, pad_id = load_tokenizer(spec)
        self.batches = TokenBatches(tokenizer, pad_id, min(batch_size, self.RUN_TEXTS))
        # session.run releases the GIL, so plain threads run batches in parallel.
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="onnx-embed")
        self.spec = spec
        # The int8 file's name carries its recipe and calibration hash: a new calibration is a
        # new embedder name, so reference indexes and cached vectors of another one never mix.
        variant = precision
        if precision == "int8":
            variant = model_file.stem.removeprefix("model-")
        self.name = f"{spec.model_id}/onnx-{variant}"
        self.dim = spec.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts with onnxruntime, `threads` padded batches at a time."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = self.batches(prepare_texts(texts, self.spec.prefix, self.spec.do_lower_case))
        for rows, vectors in self.pool.map(self._run, batches):
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
        prepare_torch(threads)
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
