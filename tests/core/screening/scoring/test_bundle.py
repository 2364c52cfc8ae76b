"""The shipped trained weights: they match their card, and the card says how they were made."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.quality.functional import SOURCE, Suite
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.scoring.bundle import (
    BLENDER_FILE,
    CARD_FILE,
    DEFAULT_MODEL_PATH,
    EXAMPLES_FILE,
    HEAD_FILE,
    WEIGHT_FILES,
    ModelBundle,
    sha256,
)


def test_shipped_weights_match_the_sha256_on_their_card() -> None:
    card = json.loads((DEFAULT_MODEL_PATH / CARD_FILE).read_text())
    assert set(card["files"]) == {*WEIGHT_FILES, EXAMPLES_FILE}
    for name in card["files"]:
        assert card["files"][name] == sha256(DEFAULT_MODEL_PATH / name)
    bundle = ModelBundle.load()
    assert bundle.version == card["files"][BLENDER_FILE][:12]


def test_the_card_names_data_seed_recipe_and_metrics() -> None:
    card = json.loads((DEFAULT_MODEL_PATH / CARD_FILE).read_text())
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    assert card["data"]["reference_digest"] == reference.digest()
    assert card["data"]["rows"] == len(reference)
    assert isinstance(card["seed"], int)
    assert "leave-one-source-out" in card["recipe"]
    per_source = card["metrics"]["out_of_fold_macro_f1"]
    assert set(per_source) == {*reference.sources, SOURCE}
    assert 0.5 < card["metrics"]["out_of_fold_mean_macro_f1"] <= 1.0
    assert card["data"]["augmentation"]["rows"] == card["metrics"]["augmented_rows"]


def test_the_shipped_examples_are_the_suites_train_cases_and_none_of_its_test_cases() -> None:
    examples = ModelBundle.load().examples
    assert examples is not None
    suite = Suite.load()
    frames = suite.training_frames()
    assert examples.texts == frames.texts
    assert examples.labels == frames.labels
    assert not set(examples.texts) & {case.text for case in suite.cases("test")}
    card = json.loads((DEFAULT_MODEL_PATH / CARD_FILE).read_text())
    assert card["data"]["augmentation"]["digest"] == examples.digest()


def test_examples_that_differ_from_their_card_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_PATH, copy)
    bundle = ModelBundle.load(copy)
    assert bundle.examples is not None
    bundle.examples.texts[0] = "a different text"
    bundle.examples.save(copy / EXAMPLES_FILE)
    with pytest.raises(ConfigError, match="does not match its card"):
        ModelBundle.load(copy)


def test_weights_that_differ_from_their_card_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_PATH, copy)
    with (copy / HEAD_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ConfigError, match="does not match its card"):
        ModelBundle.load(copy)


def test_saving_writes_a_card_with_the_new_digests(tmp_path: Path) -> None:
    bundle = ModelBundle.load()
    card = bundle.save(tmp_path)
    assert card["files"][HEAD_FILE] == sha256(tmp_path / HEAD_FILE)
    assert ModelBundle.load(tmp_path).card["seed"] == bundle.card["seed"]


def test_the_exported_profanity_model_gives_the_packages_probabilities() -> None:
    from profanity_check import predict_prob

    texts = ["have a lovely day", "shut the fuck up you idiot", "", "damn that was close"]
    exported = ModelBundle.load().profanity.probabilities(texts)
    assert np.allclose(exported, predict_prob(texts), atol=1e-6)
