"""Runtime examples: they decide near-copies, stay in their tenant, and leave the rest alone."""

from __future__ import annotations

import numpy as np

from core.models import CATEGORIES, Category
from core.screening.scoring.examples import ExamplesConfig, RuntimeExamples, fit_residual

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


def separable(count: int = 20) -> tuple[np.ndarray, list[Category]]:
    """Harmful examples around one direction, benign ones around its opposite."""
    direction = unit(7)[0]
    harmful = unit(10, count) * 0.3 + direction
    benign = unit(11, count) * 0.3 - direction
    vectors = np.vstack([harmful, benign]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, [Category.SPAM] * count + [Category.LOW_RISK] * count


def test_the_residual_head_is_fit_to_the_optimum_of_its_objective() -> None:
    vectors, labels = separable()
    harmful = np.array([label is not Category.LOW_RISK for label in labels])
    base = np.random.default_rng(5).normal(0, 1, len(labels)).astype(np.float32)
    config = ExamplesConfig(regularisation=0.1)
    head = fit_residual(vectors, harmful, base, config)
    # The gradient of the class-balanced, L2-penalised log-loss vanishes at the returned head.
    z = head.scale * base.astype(np.float64) + vectors @ head.weights + head.bias
    residual = (1.0 / (1.0 + np.exp(-z)) - harmful) * np.where(
        harmful, 0.5 / harmful.mean(), 0.5 / (1.0 - harmful.mean())
    )
    assert np.abs(vectors.T @ residual + 0.1 * head.weights).max() < 1e-3
    assert abs(residual.sum()) < 1e-3
    assert abs(residual @ base + 0.1 * (head.scale - 1.0)) < 1e-3


def test_harmful_examples_name_the_category_of_a_text_the_head_flags() -> None:
    vectors, labels = separable()
    examples = RuntimeExamples(
        DIM,
        ExamplesConfig(similar_from=0.99, certain_at=1.0, category_from=0.3, category_at=0.6),
    )
    examples.add(vectors, [f"r{i}" for i in range(40)], labels, np.full(40, -1.0, np.float32), "a")
    probe = unit(7)[0] + np.random.default_rng(3).normal(0, 0.3, DIM).astype(np.float32)
    probe /= np.linalg.norm(probe)
    result = examples.adjust(probe[None, :], ["a"], np.array([-1.0], np.float32), mix(1))
    assert result.log_odds[0] > 0
    assert result.category_probs[0].argmax() == SPAM  # the blend alone said TOXIC
    assert result.shown[0] and result.shown[0][0].label is Category.SPAM
