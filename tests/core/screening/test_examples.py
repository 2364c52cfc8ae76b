"""Runtime examples: they decide near-copies, stay in their tenant, and leave the rest alone."""

from __future__ import annotations

import numpy as np

from core.models import CATEGORIES, Category
from core.screening.examples import ExamplesConfig, RuntimeExamples

DIM = 16
SPAM = CATEGORIES.index(Category.SPAM)


def unit(seed: int, count: int = 1) -> np.ndarray:
    """Random unit vectors."""
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def mix(count: int) -> np.ndarray:
    """A category mix that says TOXIC."""
    out = np.zeros((count, len(CATEGORIES)), dtype=np.float32)
    out[:, CATEGORIES.index(Category.TOXIC)] = 1.0
    return out


def test_an_example_decides_a_near_copy_and_is_listed() -> None:
    examples = RuntimeExamples(DIM)
    example = unit(0)
    examples.add(example, ["review:1"], [Category.SPAM], np.array([-3.0], np.float32), "a")
    base = np.array([-3.0], np.float32)
    result = examples.adjust(example * 0.999, ["a"], base, mix(1))
    assert result.log_odds[0] > 0 > base[0]
    assert result.shift[0] == result.log_odds[0] - base[0]
    assert result.category_probs[0].argmax() == SPAM
    assert result.shown[0][0].id == "review:1"


def test_an_example_for_one_tenant_changes_nothing_for_another() -> None:
    examples = RuntimeExamples(DIM)
    example = unit(0)
    examples.add(example, ["review:1"], [Category.SPAM], np.array([-3.0], np.float32), "a")
    base = np.array([-3.0, -3.0], np.float32)
    result = examples.adjust(np.vstack([example, example]), ["b", None], base, mix(2))
    assert np.array_equal(result.log_odds, base)
    assert result.shown == [[], []]
    assert examples.count("a") == 1 and examples.count("b") == 0


def test_a_global_example_acts_for_every_tenant() -> None:
    examples = RuntimeExamples(DIM)
    example = unit(0)
    examples.add(example, ["review:1"], [Category.SPAM], np.array([-3.0], np.float32), None)
    result = examples.adjust(
        np.vstack([example, example]), ["a", None], np.full(2, -3.0, np.float32), mix(2)
    )
    assert (result.log_odds > 0).all()


def test_unrelated_texts_keep_their_decision() -> None:
    examples = RuntimeExamples(DIM, ExamplesConfig(similar_from=0.6, certain_at=0.9))
    examples.add(unit(0), ["review:1"], [Category.SPAM], np.array([-3.0], np.float32), "a")
    far = -unit(0)  # the opposite direction: similarity -1
    base = np.array([-2.0], np.float32)
    result = examples.adjust(far, ["a"], base, mix(1))
    assert result.log_odds[0] == base[0]  # one class only: no residual head, no vote
    assert result.shown == [[]]


def test_the_residual_head_shifts_texts_like_the_harmful_examples() -> None:
    rng = np.random.default_rng(3)
    direction = unit(7)[0]
    harmful = unit(10, 20) * 0.3 + direction
    benign = unit(11, 20) * 0.3 - direction
    vectors = np.vstack([harmful, benign]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = [Category.SPAM] * 20 + [Category.LOW_RISK] * 20
    examples = RuntimeExamples(DIM, ExamplesConfig(similar_from=0.99, certain_at=1.0))
    examples.add(vectors, [f"r{i}" for i in range(40)], labels, np.full(40, -1.0, np.float32), "a")
    probe = direction + rng.normal(0, 0.5, DIM).astype(np.float32)
    probe /= np.linalg.norm(probe)
    result = examples.adjust(probe[None, :], ["a"], np.array([-1.0], np.float32), mix(1))
    assert result.log_odds[0] > 0  # pushed over the cut-off along the harmful direction
