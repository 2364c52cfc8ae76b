"""Sentence embeddings: model directories and tokenising, the torch/ONNX/sentence-transformers
backends, the ONNX export, the loader, and the Redis cache in front of them."""

from core.screening.embedding.backends import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    TorchEmbedder,
)
from core.screening.embedding.cache import CachedEmbedder, EmbeddingCache, embedded_form
from core.screening.embedding.loader import BACKENDS, load_embedder, resolve_device
from core.screening.embedding.model import (
    PACKAGED_MODEL,
    Embedder,
    ModelSpec,
    Vectors,
    l2_normalise,
    read_model_spec,
    resolve_model,
)

__all__ = [
    "BACKENDS",
    "PACKAGED_MODEL",
    "CachedEmbedder",
    "Embedder",
    "EmbeddingCache",
    "ModelSpec",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "TorchEmbedder",
    "Vectors",
    "embedded_form",
    "l2_normalise",
    "load_embedder",
    "read_model_spec",
    "resolve_device",
    "resolve_model",
]
