"""Evaluation: metrics arithmetic, the report's keys, folds, and `make eval DATA=... REPORT=...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import Category
from core.quality.crossval import leave_one_source_out, stratified_holdout
from core.quality.evaluation import (
    LabelledTexts,
    binary_metrics,
    category_metrics,
    read_labelled_csv,
    report,
)
from core.quality.obfuscation import REWRITES, trigger_words, variants
from core.screening.text.normalization import normalize
from tests.factories import ROOT


def test_binary_metrics_match_hand_computed_values() -> None:
    truth = np.array([True, True, True, False, False, False, False, False])
    predicted = np.array([True, True, False, True, False, False, False, False])
    metrics = binary_metrics(truth, predicted)
    assert metrics["accuracy"] == 0.75
    assert metrics["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["recall"] == pytest.approx(2 / 3, abs=1e-4)
    # F1 harmful = 2/3; F1 low-risk: precision 4/5, recall 4/5 -> 0.8
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-4)


def test_per_category_metrics_count_support_from_the_truth() -> None:
    truth = [Category.SPAM, Category.SPAM, Category.TOXIC, Category.LOW_RISK]
    predicted = [Category.SPAM, Category.LOW_RISK, Category.SPAM, Category.LOW_RISK]
    metrics = category_metrics(truth, predicted)
    assert metrics["SPAM"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["TOXIC"]["recall"] == 0.0
    assert "VIOLENCE" not in metrics


def test_report_has_the_documented_keys() -> None:
    data = LabelledTexts(
        ["a", "b", "c"], [Category.SPAM, Category.LOW_RISK, Category.TOXIC], ["x"] * 3
    )
    result = report(
        data, [Category.SPAM, Category.LOW_RISK, Category.LOW_RISK], np.array([False, False, True])
    )
    assert result["n"] == 3
    assert set(result["binary"]) == {"accuracy", "macro_f1", "precision", "recall"}
    assert set(result["per_category"]["SPAM"]) == {"precision", "recall", "f1", "support"}
    assert result["peer"]["name"] == "alt-profanity-check"
    assert set(result["peer"]["binary"]) >= {"accuracy", "macro_f1"}


def test_csv_without_valid_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nhello,NICE\n")
    with pytest.raises(ConfigError, match="row 2"):
        read_labelled_csv(path)


def test_leave_one_source_out_never_trains_on_the_tested_source() -> None:
    data = LabelledTexts(
        [f"t{i}" for i in range(9)],
        [Category.LOW_RISK] * 9,
        ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
    )
    folds = leave_one_source_out(data, trainable={"a", "b"})
    assert [fold.name for fold in folds] == ["a", "b", "c"]
    for fold in folds:
        tested = {data.sources[i] for i in np.flatnonzero(fold.test)}
        trained = {data.sources[i] for i in np.flatnonzero(fold.train)}
        assert tested == {fold.name}
        assert fold.name not in trained
        assert trained <= {"a", "b"}


def test_holdout_split_is_stratified_and_disjoint() -> None:
    labels = [Category.SPAM] * 50 + [Category.LOW_RISK] * 50
    data = LabelledTexts([f"t{i}" for i in range(100)], labels, ["s"] * 100)
    fold = stratified_holdout(data, {"s"}, test_share=0.2, seed=0)
    assert not (fold.train & fold.test).any()
    assert fold.test.sum() == 20
    assert sum(labels[i] is Category.SPAM for i in np.flatnonzero(fold.test)) == 10


def test_every_obfuscation_of_a_trigger_word_folds_back() -> None:
    triggers = trigger_words()
    text = "you are a stupid bitch"
    rewritten = variants(text, triggers)
    assert set(rewritten) == set(REWRITES)
    for name, variant in rewritten.items():
        assert variant != text, name
        assert normalize(variant) == text, name


@pytest.mark.slow
def test_make_eval_on_a_csv_writes_the_report(
    tmp_path: Path, small_reference: Path, model_dir: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text(
        "text,label\n"
        '"I will kill you and your whole family",VIOLENCE\n'
        '"thanks, see you at lunch tomorrow",LOW_RISK\n'
        '"WIN cash now!!! text WIN to 80082",SPAM\n'
        '"what a lovely picture of your dog",LOW_RISK\n'
    )
    out = tmp_path / "report.json"
    env = {
        **os.environ,
        "REFERENCE_PATH": str(small_reference),
        "VAR_DIR": str(tmp_path / "var"),
        "MODEL_DIR": str(model_dir),
        "EMBED_DEVICE": "cpu",
    }
    subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--data", str(data), "--report", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["n"] == 4
    assert set(result) == {"n", "binary", "per_category", "peer"}
    assert set(result["binary"]) == {"accuracy", "macro_f1", "precision", "recall"}
    assert result["peer"]["name"] == "alt-profanity-check"
    assert result["per_category"]["LOW_RISK"]["support"] == 2


@pytest.mark.slow
def test_make_eval_with_adapt_adds_examples_and_measures_only_the_rest(
    tmp_path: Path, small_reference: Path, model_dir: Path
) -> None:
    rows = [f'"buy cheap followers now at fastfollow dot biz, code {i}",SPAM' for i in range(6)]
    rows += [f'"the match starts at {i} pm, bring snacks",LOW_RISK' for i in range(6)]
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "report.json"
    env = {
        **os.environ,
        "REFERENCE_PATH": str(small_reference),
        "VAR_DIR": str(tmp_path / "var"),
        "MODEL_DIR": str(model_dir),
        "EMBED_DEVICE": "cpu",
    }
    subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--data", str(data), "--report", str(out),
         "--adapt", "2"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["adapt"] == {"k": 2, "added": 4}
    assert result["n"] == 8  # the 4 added rows are not measured
    assert result["per_category"]["SPAM"]["recall"] == 1.0  # near-copies of the examples
