"""The functional suite: split by template, big enough per functionality, and its table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import Category
from core.quality import targets
from core.quality.functional import Suite, disguise, format_table, measure


@pytest.fixture(scope="module")
def suite() -> Suite:
    """The shipped suite."""
    return Suite.load()


def test_no_test_template_or_case_reaches_the_training_frames(suite: Suite) -> None:
    train, test = suite.cases("train"), suite.cases("test")
    train_templates = {(c.functionality, c.template) for c in train}
    test_templates = {(c.functionality, c.template) for c in test}
    assert not {t for _, t in train_templates} & {t for _, t in test_templates}
    frames = suite.training_frames()
    assert len(frames) == len(train)
    assert not set(frames.texts) & {c.text for c in test}
    assert {c.split for c in train} == {"train"}


_TOKEN = re.compile(r"\{[a-z_]+\}|[a-z']+")
# Shapes that are well known as examples of what held-out statements look like: a training
# template built on one would teach the suite's own answers.
KNOWN_SHAPES = (
    "can't stand {group}",
    "{group} are vermin",
    "don't deserve rights",
    "every {member} i see",
    "is fucking ridiculous",
    "could kill for",
)


def _tokens(template: str) -> list[str]:
    """A template's lower-cased words, each slot one token."""
    return _TOKEN.findall(template.lower())


def near_duplicates(first: str, second: str) -> bool:
    """Whether two templates share a run of four tokens or half their distinct tokens."""
    a, b = _tokens(first), _tokens(second)
    runs = {tuple(a[i : i + 4]) for i in range(len(a) - 3)}
    if any(tuple(b[i : i + 4]) in runs for i in range(len(b) - 3)):
        return True
    return len(set(a) & set(b)) / max(1, len(set(a) | set(b))) >= 0.5


def test_near_duplicates_catches_a_reworded_copy_and_passes_a_new_phrasing() -> None:
    assert near_duplicates(
        "whoever designed this {thing} is a fucking moron",
        "whoever is behind this {thing} is a dumb cunt",
    )
    assert near_duplicates("{group} are not vermin, they are people", "{group} are not vermin")
    assert not near_duplicates(
        "the muppets who built this {thing} have shit for brains",
        "whoever is behind this {thing} is a dumb cunt",
    )


def test_no_train_template_copies_a_test_template_or_a_known_example_shape(
    suite: Suite,
) -> None:
    train = sorted({c.template for c in suite.cases("train")})
    test = sorted({c.template for c in suite.cases("test")})
    copies = [(a, b) for a in train for b in test if near_duplicates(a, b)]
    assert not copies
    shapes = [(a, s) for a in train for s in KNOWN_SHAPES if s in a.lower()]
    assert not shapes


def test_every_functionality_has_forty_test_cases(suite: Suite) -> None:
    counts = {f.name: 0 for f in suite.functionalities}
    for case in suite.cases("test"):
        counts[case.functionality] += 1
    assert len(counts) >= 25
    assert min(counts.values()) >= 40, counts


def test_the_suite_covers_all_seven_labels_and_the_benign_contrasts(suite: Suite) -> None:
    labels = {f.label for f in suite.functionalities}
    assert labels == set(Category)
    benign = [f for f in suite.functionalities if f.label is Category.LOW_RISK]
    assert len(benign) >= 10


def test_each_disguised_functionality_has_a_harmful_kind_and_changes_every_case(
    suite: Suite,
) -> None:
    disguised = [f for f in suite.functionalities if f.rewrite_of]
    harmful = {c for c in Category if c is not Category.LOW_RISK}
    assert {f.label for f in disguised} == harmful
    plain = {
        c.text for c in suite.cases("test") if c.functionality in {f.rewrite_of for f in disguised}
    }
    for case in suite.cases("test"):
        if case.functionality in {f.name for f in disguised}:
            assert case.text not in plain


def test_disguises_take_turns() -> None:
    text = "refugees are parasites"
    assert [disguise(text, n) for n in range(4)] == [
        "refuees are paraites",
        "refguees are parsaites",
        "refugeesareparasites",
        "r3fug335 are p4r451735",
    ]


def test_the_table_gives_each_functionality_next_to_the_peer_with_mean_and_worst(
    suite: Suite,
) -> None:
    result = measure(
        suite,
        lambda texts: [Category.LOW_RISK] * len(texts),
        lambda texts: np.ones(len(texts), dtype=bool),
    )
    rows = result["functionalities"]
    benign = {f.name for f in suite.functionalities if f.label is Category.LOW_RISK}
    assert all(rows[name]["accuracy"] == 1.0 for name in benign)
    assert all(rows[name]["peer_accuracy"] == 0.0 for name in benign)
    assert result["worst"] == 0.0
    table = format_table(result)
    for name in rows:
        assert name in table
    assert "mean" in table and "worst" in table
    checks = targets.check_functional(result)
    assert not checks["functional_worst_accuracy"][1]
    assert not checks["functional_mean_accuracy"][1]


def test_a_template_with_no_target_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(
        '[targets]\nname = ["Sam"]\n[[functionality]]\nname = "x"\nlabel = "TOXIC"\n'
        'about = "x"\ntrain = ["{name} is {thing}"]\ntest = []\n'
    )
    with pytest.raises(ConfigError, match="thing"):
        Suite.load(path)
