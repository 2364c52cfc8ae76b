"""The shipped reference set and the FAISS index: search, neighbours, votes, adding, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import Category
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.index import ReferenceIndex


def unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Random L2-normalised vectors."""
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_shipped_reference_set_has_only_redistributable_sources_and_valid_labels() -> None:
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    assert len(reference) > 50_000
    assert set(reference.sources) == {
        "davidson", "olid", "sms_spam", "surge_toxicity", "openai_moderation",
        "scamspot_instagram", "tg_spam", "edos", "topical_chat", "sbic_dev",
    }  # fmt: skip
    # Evaluation only (no licence, or copyleft): never shipped.
    assert not set(reference.sources) & {"ghc", "formspring", "gametox", "kaggle_insults", "ethos"}
    assert set(reference.labels) == set(Category)
    assert len(set(reference.ids)) == len(reference)
    assert reference.digest() == ReferenceSet.load(DEFAULT_REFERENCE_PATH).digest()


def test_attribution_file_names_every_shipped_source() -> None:
    text = (DEFAULT_REFERENCE_PATH.parent / "ATTRIBUTION.md").read_text()
    for source in set(ReferenceSet.load(DEFAULT_REFERENCE_PATH).sources):
        assert source in text


def test_reference_csv_needs_valid_labels(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nhello,MAYBE\n")
    with pytest.raises(ConfigError, match="row 2"):
        ReferenceSet.load(path)


def test_search_finds_each_vector_itself_first() -> None:
    vectors = unit(200)
    labels = [Category.TOXIC if i % 2 else Category.LOW_RISK for i in range(200)]
    index = ReferenceIndex(vectors, [f"e{i}" for i in range(200)], labels)
    sims, positions = index.search(vectors[:20], 5)
    assert positions[:, 0].tolist() == list(range(20))
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)
    neighbours = index.neighbors(sims, positions, 2)
    assert neighbours[3][0].id == "e3"
    assert neighbours[3][0].label is Category.TOXIC


def test_added_examples_are_found_without_a_rebuild() -> None:
    index = ReferenceIndex(unit(50), [f"e{i}" for i in range(50)], [Category.LOW_RISK] * 50)
    new = unit(1, seed=99)
    index.add(new, ["fresh"], [Category.SPAM])
    _, positions = index.search(new, 1)
    assert index.ids[positions[0, 0]] == "fresh"
    assert len(index) == 51


def test_votes_weigh_closer_neighbours_more() -> None:
    base = unit(1)[0]
    near = base + 0.05 * unit(1, seed=1)[0]
    far = base + 0.6 * unit(1, seed=2)[0]
    vectors = np.stack([near / np.linalg.norm(near), far / np.linalg.norm(far)]).astype(np.float32)
    index = ReferenceIndex(vectors, ["near", "far"], [Category.SPAM, Category.LOW_RISK])
    sims, positions = index.search(base[None, :], 2)
    votes = index.votes(sims, positions, sharpness=20.0)
    assert votes[0].sum() == pytest.approx(1.0)
    assert votes[0, list(Category).index(Category.SPAM)] > 0.9


def test_index_survives_save_and_load(tmp_path: Path) -> None:
    vectors = unit(30)
    index = ReferenceIndex(vectors, [f"e{i}" for i in range(30)], [Category.HATE_SPEECH] * 30)
    index.save(tmp_path / "idx")
    again = ReferenceIndex.load(tmp_path / "idx")
    assert again.ids == index.ids
    assert np.allclose(again.vectors(), vectors)


def test_empty_index_votes_low_risk() -> None:
    index = ReferenceIndex(np.zeros((0, 8), dtype=np.float32), [], [])
    sims, positions = index.search(unit(2, dim=8), 5)
    assert index.votes(sims, positions)[:, 0].tolist() == [1.0, 1.0]


def test_numpy_search_finds_what_faiss_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts without faiss (a GPU image) search with numpy and get the same neighbours."""
    import core.screening.reference.index

    vectors, queries = unit(500, seed=3), unit(40, seed=4)
    labels = [Category.LOW_RISK] * 500
    ids = [f"e{i}" for i in range(500)]
    with_faiss = ReferenceIndex(vectors, ids, labels).search(queries, 7)
    monkeypatch.setattr(
        core.screening.reference.index,
        "_search_backend",
        core.screening.reference.index._NumpySearch,
    )
    plain = ReferenceIndex(vectors[:300], ids[:300], labels[:300])
    plain.add(vectors[300:], ids[300:], labels[300:])
    with_numpy = plain.search(queries, 7)
    assert np.array_equal(with_faiss[1], with_numpy[1])
    assert np.allclose(with_faiss[0], with_numpy[0], atol=1e-5)
    assert np.allclose(plain.vectors(), vectors)


def test_a_saved_set_loads_back_the_same_and_saves_to_the_same_bytes(tmp_path: Path) -> None:
    examples = ReferenceSet(
        ["a:1", "a:2"],
        ['hello, "world"', "line\nbreak"],
        [Category.LOW_RISK, Category.SPAM],
        ["a", "b"],
    )
    examples.save(tmp_path / "one.csv.gz")
    again = ReferenceSet.load(tmp_path / "one.csv.gz")
    assert (again.ids, again.texts, again.labels, again.sources) == (
        examples.ids,
        examples.texts,
        examples.labels,
        examples.sources,
    )
    again.save(tmp_path / "two.csv.gz")
    assert (tmp_path / "one.csv.gz").read_bytes() == (tmp_path / "two.csv.gz").read_bytes()
