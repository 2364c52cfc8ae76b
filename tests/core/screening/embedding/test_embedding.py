"""The embedding layer: model specs, input texts, batching, and the packaged model's backends."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.screening.embedding import (
    PACKAGED_MODEL,
    Embedder,
    ModelSpec,
    load_embedder,
    read_model_spec,
    resolve_model,
)
from core.screening.embedding.backends import prefetch
from core.screening.embedding.model import (
    E5_PREFIX,
    TokenBatches,
    load_tokenizer,
    prepare_texts,
    text_prefix,
)
from core.screening.embedding.onnx_export import calibration_texts, int8_file_name
from tests.factories import ROOT, SHARED_DATA

OLID = SHARED_DATA / "raw" / "olid" / "olid_normalized.csv"
EDGE_TEXTS = [
    "",
    "ok",
    "  padded with spaces  ",
    "Go home you're drunk!!! 👊🇺🇸👊 #MAGA URL",
    "Ünïcödé — “quotes” and 中文 text",
    "word " * 400,  # beyond max_seq_length (256 tokens): truncated, as sentence-transformers does
]


def _olid_texts(n: int) -> list[str]:
    """The first n tweets of the OLID sample (or fixed sentences where the data is absent)."""
    if not OLID.is_file():
        return [f"sentence number {i} about topic {i % 7}" for i in range(n)]
    with OLID.open(encoding="utf-8") as handle:
        return [row["text"] for _, row in zip(range(n), csv.DictReader(handle), strict=False)]


def _packaged_spec() -> ModelSpec:
    """The spec of the packaged all-MiniLM-L6-v2."""
    model_id, path = resolve_model(PACKAGED_MODEL)
    return read_model_spec(path, model_id)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two arrays of unit rows."""
    return np.asarray(np.sum(a * b, axis=1))


# --- unit level: no model weights loaded ------------------------------------------------------


def test_e5_models_get_the_query_prefix_and_others_none() -> None:
    assert text_prefix("intfloat/e5-small-v2") == E5_PREFIX
    assert text_prefix("/models/multilingual-E5-base/") == E5_PREFIX
    assert text_prefix(PACKAGED_MODEL) == ""
    assert text_prefix("/srv/e5-models/all-MiniLM-L6-v2") == ""  # only the model's own name counts


def test_prepare_texts_prefixes_and_lowercases_without_reordering() -> None:
    assert prepare_texts(["B", "a"], E5_PREFIX) == ["query: B", "query: a"]
    assert prepare_texts(["B", "a"], "", lowercase=True) == ["b", "a"]
    assert prepare_texts(["B"]) == ["B"]


def test_packaged_model_resolves_to_the_wheel_copy_under_both_names() -> None:
    name, path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert (name, path) == resolve_model(PACKAGED_MODEL)
    assert name == PACKAGED_MODEL
    assert (path / "modules.json").is_file()


def test_unknown_model_name_is_a_config_error_not_a_download() -> None:
    with pytest.raises(ConfigError):
        resolve_model("no-such-org/no-such-model-xyz")


def test_packaged_model_spec_is_mean_pooled_384_dims_256_tokens() -> None:
    spec = _packaged_spec()
    assert (spec.pooling, spec.dim, spec.max_seq_length, spec.native) == ("mean", 384, 256, True)


def test_unhandled_module_layout_is_not_native(tmp_path: Path) -> None:
    """A Dense head after pooling is left to the SentenceTransformer fallback."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "mean"}')
    assert not read_model_spec(tmp_path, "dense-model").native


def test_new_style_cls_pooling_config_is_read(tmp_path: Path) -> None:
    modules = [
        {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.base.modules.Transformer",
        },
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "x.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        '{"embedding_dimension": 8, "pooling_mode": "cls"}'
    )
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 64}')
    spec = read_model_spec(tmp_path, "cls-model")
    assert (spec.pooling, spec.dim, spec.max_seq_length) == ("cls", 8, 64)


def test_token_batches_cover_every_text_once_sorted_and_tightly_padded() -> None:
    spec = _packaged_spec()
    tokenizer, pad_id = load_tokenizer(spec)
    texts = _olid_texts(50) + EDGE_TEXTS
    batches = list(TokenBatches(tokenizer, pad_id, batch_size=8)(texts))
    rows = np.concatenate([batch.rows for batch in batches])
    assert sorted(rows.tolist()) == list(range(len(texts)))
    for batch in batches:
        lengths = batch.attention_mask.sum(axis=1)
        assert batch.input_ids.shape[1] == lengths.max()  # padded to the longest, not to 256
        assert list(lengths) == sorted(lengths, reverse=True)
        assert (batch.input_ids[batch.attention_mask == 0] == pad_id).all()
    assert max(b.input_ids.shape[1] for b in batches) == spec.max_seq_length  # truncation


def test_prefetch_yields_in_order_and_reraises_producer_errors() -> None:
    assert list(prefetch(iter(range(10)))) == list(range(10))

    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("tokenizer failed")

    with pytest.raises(RuntimeError, match="tokenizer failed"):
        list(prefetch(broken()))


def test_importing_the_embedding_modules_loads_no_torch_or_runtime() -> None:
    script = (
        "import sys, core.screening.embedding, core.screening.embedding.onnx_export\n"
        "heavy = ['torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'tokenizers']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_embedder(backend="tensorflow")


# --- the real packaged model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Tweet-length texts plus edge cases: empty, unicode, emoji, longer than max_seq_length."""
    return _olid_texts(100) + EDGE_TEXTS


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ONNX export cache for this module."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def st_vectors(texts: list[str]) -> np.ndarray:
    """Reference vectors from SentenceTransformer.encode(normalize_embeddings=True)."""
    from core.screening.embedding import resolve_model as resolve

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve(PACKAGED_MODEL)[1]), device="cpu")
    return np.asarray(model.encode(texts, normalize_embeddings=True, batch_size=32))


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    """The native torch backend on CPU (fp32)."""
    return load_embedder(backend="torch", device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def torch_vectors(torch_embedder: Embedder, texts: list[str]) -> np.ndarray:
    """The torch backend's vectors for the module's texts, the reference for ONNX."""
    return torch_embedder.encode(texts)


@pytest.fixture(scope="module")
def onnx_fp32(model_cache: Path) -> Embedder:
    """The fp32 ONNX backend, exported into the module's cache."""
    return load_embedder(backend="onnx-fp32", device="cpu", cache_dir=model_cache)


@pytest.fixture(scope="module")
def onnx_int8(onnx_fp32: Embedder, model_cache: Path) -> Embedder:
    """The int8 ONNX backend, quantised from the fp32 export."""
    return load_embedder(backend="onnx", device="cpu", cache_dir=model_cache)


@pytest.mark.slow
def test_torch_backend_matches_sentence_transformers_encode(
    torch_embedder: Embedder, torch_vectors: np.ndarray, texts: list[str], st_vectors: np.ndarray
) -> None:
    vectors = torch_vectors
    assert torch_embedder.name == "all-MiniLM-L6-v2/torch-fp32"
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    assert _cosines(vectors, st_vectors).min() > 0.999


@pytest.mark.slow
def test_onnx_fp32_reproduces_the_torch_vectors(
    onnx_fp32: Embedder, torch_vectors: np.ndarray, texts: list[str]
) -> None:
    assert onnx_fp32.name == "all-MiniLM-L6-v2/onnx-fp32"
    assert _cosines(onnx_fp32.encode(texts), torch_vectors).min() > 0.9999


@pytest.mark.slow
def test_onnx_int8_vectors_stay_close_to_the_torch_ones(
    onnx_int8: Embedder, torch_vectors: np.ndarray, texts: list[str]
) -> None:
    """Measured on 1,000 OLID tweets against fp32: mean cosine 0.994, minimum 0.983."""
    cosines = _cosines(onnx_int8.encode(texts), torch_vectors)
    assert onnx_int8.name.startswith("all-MiniLM-L6-v2/onnx-int8-s")
    assert cosines.mean() > 0.99
    assert cosines.min() > 0.97


@pytest.mark.slow
def test_onnx_export_is_cached_and_a_second_load_does_not_re_export(
    onnx_int8: Embedder, model_cache: Path
) -> None:
    (directory,) = model_cache.iterdir()
    assert directory.name.startswith("all-MiniLM-L6-v2-")
    files = sorted(directory.iterdir())
    assert [f.name for f in files] == [int8_file_name(calibration_texts()), "model.onnx"]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = load_embedder(backend="onnx", device="cpu", cache_dir=model_cache)
    assert again.name == onnx_int8.name
    assert [f.stat().st_mtime_ns for f in sorted(directory.iterdir())] == stamps


@pytest.mark.slow
def test_auto_backend_on_cpu_is_onnx_int8_and_loads_no_torch_once_exported(
    onnx_int8: Embedder, model_cache: Path
) -> None:
    script = (
        "import sys; from pathlib import Path; from core.screening.embedding import load_embedder\n"
        f"e = load_embedder(device='cpu', cache_dir=Path({str(model_cache)!r}))\n"
        "print(e.name, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split()[-2:] == [onnx_int8.name, "False"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx_fp32", "onnx_int8"])
def test_rows_are_unit_length_in_input_order_and_independent_of_batching(
    backend: str, request: pytest.FixtureRequest, texts: list[str]
) -> None:
    embedder: Embedder = request.getfixturevalue(
        {"torch": "torch_embedder", "onnx_fp32": "onnx_fp32", "onnx_int8": "onnx_int8"}[backend]
    )
    vectors = embedder.encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reversed_vectors = embedder.encode(texts[::-1])
    assert _cosines(reversed_vectors[::-1], vectors).min() > 0.999
    one_by_one = np.stack([embedder.encode([text])[0] for text in texts[-len(EDGE_TEXTS) :]])
    assert _cosines(one_by_one, vectors[-len(EDGE_TEXTS) :]).min() > 0.999


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch_embedder", "onnx_int8"])
def test_empty_input_returns_an_empty_float32_matrix(
    backend: str, request: pytest.FixtureRequest
) -> None:
    embedder: Embedder = request.getfixturevalue(backend)
    empty = embedder.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    assert isinstance(embedder, Embedder)


def _mixed_batch(texts: list[str]) -> list[str]:
    """100 texts of very different lengths: one word to beyond max_seq_length."""
    lengths = [1, 3, 8, 20, 60, 300]
    return [" ".join(texts[i].split() * 40)[: lengths[i % 6] * 6] or "x" for i in range(100)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx_fp32", "onnx_int8"])
def test_a_texts_vector_does_not_depend_on_the_batch_it_is_in(
    backend: str, request: pytest.FixtureRequest, texts: list[str]
) -> None:
    """Padded batches of 100 mixed lengths give each text its solo vector (dynamic int8 moved
    them by up to 0.03 per component: it took activation scales from the whole batch)."""
    embedder: Embedder = request.getfixturevalue(backend)
    batch = _mixed_batch(texts)
    in_batch = embedder.encode(batch)
    alone = np.stack([embedder.encode([text])[0] for text in batch[:24]])
    assert np.abs(alone - in_batch[:24]).max() < 1e-5
    shuffled = embedder.encode(batch[50:] + texts[:30] + batch[:50])
    assert np.abs(shuffled[-50:] - in_batch[:50]).max() < 1e-5


def test_calibration_is_a_fixed_sample_of_the_shipped_reference_set() -> None:
    first = calibration_texts()
    assert first == calibration_texts()
    assert len(first) == len(set(first)) == 300
    assert int8_file_name(first) != int8_file_name(first[1:])
