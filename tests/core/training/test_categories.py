"""The category fit: which categories a label leaves open, and the softmax over label sets."""

from __future__ import annotations

import numpy as np

from core.models import CATEGORIES, HARMFUL_CATEGORIES, Category
from core.screening.text.target import TARGET_FEATURES
from core.training.categories import label_sets, softmax_fit

TOXIC = CATEGORIES.index(Category.TOXIC)
TARGETED = CATEGORIES.index(Category.TARGETED_HARASSMENT)
HATE = CATEGORIES.index(Category.HATE_SPEECH)
SEXUAL = CATEGORIES.index(Category.SEXUAL)
COLUMN = {c: HARMFUL_CATEGORIES.index(CATEGORIES[c]) for c in (TOXIC, TARGETED, HATE, SEXUAL)}


def cues(*names: str) -> np.ndarray:
    """One row of target cues with the named ones set."""
    row = np.zeros((1, len(TARGET_FEATURES)), np.float32)
    for name in names:
        row[0, TARGET_FEATURES.index(name)] = 1.0
    return row


def open_of(label: int, source: str, row: np.ndarray) -> set[int]:
    """The categories one row leaves open, with `olid` the one source labelling TH and SEXUAL."""
    labelled = {TARGETED: {"olid"}, SEXUAL: {"olid"}, TOXIC: {"olid", "davidson"}}
    allowed = label_sets(np.array([label]), np.array([source]), row, labelled)[0]
    return {c for c, column in COLUMN.items() if allowed[column]}


def test_a_toxic_row_aimed_at_a_person_from_a_source_without_harassment_leaves_it_open() -> None:
    assert open_of(TOXIC, "davidson", cues("addressee")) == {TOXIC, TARGETED}
    assert open_of(TOXIC, "davidson", cues("individual")) == {TOXIC, TARGETED}


def test_a_toxic_row_aimed_at_no_one_or_from_a_source_labelling_harassment_is_toxic_only() -> None:
    assert open_of(TOXIC, "davidson", cues("group_talk")) == {TOXIC}
    assert open_of(TOXIC, "olid", cues("addressee")) == {TOXIC}


def test_a_harmful_row_with_a_sexual_word_from_a_source_without_sexual_leaves_it_open() -> None:
    assert open_of(HATE, "davidson", cues("sexual_topic")) == {HATE, SEXUAL}
    assert open_of(HATE, "olid", cues("sexual_topic")) == {HATE}
    assert open_of(HATE, "davidson", cues()) == {HATE}


def test_with_one_category_per_row_the_fit_is_scikit_learns_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 4)).astype(np.float32)
    labels = (features[:, :3] + rng.normal(0, 0.5, (300, 3))).argmax(axis=1)
    weights = rng.uniform(0.5, 1.5, 300).astype(np.float32)
    allowed = np.zeros((300, len(HARMFUL_CATEGORIES)), bool)
    allowed[np.arange(300), labels] = True
    mine, bias = softmax_fit(features, allowed, weights, 1.0)
    theirs = LogisticRegression(C=1.0, max_iter=3000).fit(features, labels, sample_weight=weights)
    mine_logits = features @ mine[:, :3] + bias[:3]
    theirs_logits = features @ theirs.coef_.T + theirs.intercept_
    centred = [z - z.mean(axis=1, keepdims=True) for z in (mine_logits, theirs_logits)]
    assert np.allclose(centred[0], centred[1], atol=1e-2)
    assert (bias[3:] == -30.0).all()  # categories no row allows never win


def test_open_rows_are_split_the_way_the_sources_that_label_both_split_them() -> None:
    rng = np.random.default_rng(1)
    aimed = rng.integers(0, 2, 400).astype(np.float32)
    features = np.stack([aimed, rng.normal(size=400).astype(np.float32)], axis=1)
    allowed = np.zeros((400, len(HARMFUL_CATEGORIES)), bool)
    # The first half labels both: aimed is TARGETED_HARASSMENT, not aimed TOXIC. The second
    # half labels everything TOXIC and leaves TARGETED_HARASSMENT open on every row.
    allowed[:200, COLUMN[TARGETED]] = aimed[:200] == 1
    allowed[:200, COLUMN[TOXIC]] = aimed[:200] == 0
    allowed[200:, [COLUMN[TOXIC], COLUMN[TARGETED]]] = True
    weights, bias = softmax_fit(features, allowed, np.ones(400, np.float32), 1.0)
    named = (features[200:] @ weights + bias).argmax(axis=1)
    assert (named[aimed[200:] == 1] == COLUMN[TARGETED]).all()
    assert (named[aimed[200:] == 0] == COLUMN[TOXIC]).all()
