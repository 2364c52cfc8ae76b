"""Runtime examples: they decide near-copies, stay in their tenant, and leave the rest alone."""

from __future__ import annotations

import numpy as np

from core.models import CATEGORIES, Category
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig
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
    # The gradient of the prior-matched, L2-penalised log-loss vanishes at the returned head:
    # the classes weigh as much as the blend's mean probability over the examples says.
    offset = base.astype(np.float64)
    expected = np.mean(1.0 / (1.0 + np.exp(-offset)))
    z = offset + vectors @ head.weights + head.bias
    residual = (1.0 / (1.0 + np.exp(-z)) - harmful) * np.where(
        harmful, expected / harmful.mean(), (1.0 - expected) / (1.0 - harmful.mean())
    )
    assert np.abs(vectors.T @ residual + 0.1 * head.weights).max() < 1e-3
    assert abs(residual.sum() + config.bias_regularisation * head.bias) < 1e-3


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


def around(probe: np.ndarray, similarity: float, count: int, seed: int) -> np.ndarray:
    """Unit vectors at about `similarity` (jittered by 0.02) to a unit probe."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(count, DIM))
    noise -= np.outer(noise @ probe, probe)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    sims = similarity + rng.uniform(-0.02, 0.02, size=(count, 1))
    return (sims * probe + np.sqrt(1 - sims**2) * noise).astype(np.float32)


def lopsided(
    majority: Category, minority: Category, base: dict[Category, float]
) -> tuple[RuntimeExamples, np.ndarray, np.ndarray]:
    """100 examples of one label (30 near a probe, 70 far off) and 5 of the other, all near it.

    Near the probe both labels are as close: only the label mix tells them apart there.
    """
    probe = unit(0)[0]
    vectors = np.vstack(
        [around(probe, 0.9, 30, 1), around(-probe, 0.9, 70, 2), around(probe, 0.9, 5, 3)]
    )
    labels = [majority] * 100 + [minority] * 5
    examples = RuntimeExamples(DIM)
    blend = np.array([base[label] for label in labels], np.float32)
    examples.add(vectors, [f"r{i}" for i in range(105)], labels, blend, "a")
    return examples, probe, vectors


def test_many_benign_examples_do_not_turn_a_clearly_harmful_text_benign() -> None:
    base = {Category.LOW_RISK: -3.0, Category.HATE_SPEECH: 3.0}
    examples, probe, _ = lopsided(Category.LOW_RISK, Category.HATE_SPEECH, base)
    result = examples.adjust(probe[None, :], ["a"], np.array([3.0], np.float32), mix(1))
    assert result.log_odds[0] > 0


def test_many_harmful_examples_do_not_flag_clearly_benign_text() -> None:
    base = {Category.LOW_RISK: -3.0, Category.HATE_SPEECH: 3.0}
    examples, probe, _ = lopsided(Category.HATE_SPEECH, Category.LOW_RISK, base)
    result = examples.adjust(probe[None, :], ["a"], np.array([-3.0], np.float32), mix(1))
    assert result.log_odds[0] < 0


def test_a_near_copy_of_an_outnumbered_example_is_still_decided_by_it() -> None:
    base = {Category.LOW_RISK: -3.0, Category.HATE_SPEECH: 3.0}
    examples, _, vectors = lopsided(Category.LOW_RISK, Category.HATE_SPEECH, base)
    result = examples.adjust(vectors[100:101] * 0.9999, ["a"], np.array([-3.0], np.float32), mix(1))
    assert result.log_odds[0] > 0
    assert CATEGORIES[int(result.category_probs[0].argmax())] is Category.HATE_SPEECH


def test_reviews_of_flagged_texts_only_do_not_flag_the_texts_the_blend_calls_benign() -> None:
    # Moderators review what was flagged: every example has high blended log-odds, most are
    # confirmed and a few overturned. The mix says nothing about the texts nobody flagged.
    rng = np.random.default_rng(4)
    labels = [Category.TOXIC] * 20 + [Category.LOW_RISK] * 6
    blend = rng.uniform(1.0, 3.0, len(labels)).astype(np.float32)
    examples = RuntimeExamples(DIM, ExamplesConfig(similar_from=0.99, certain_at=1.0))
    examples.add(unit(20, len(labels)), [f"r{i}" for i in range(26)], labels, blend, "a")
    probes = unit(21, 50)
    result = examples.adjust(probes, ["a"] * 50, np.full(50, -3.0, np.float32), mix(50))
    assert (result.log_odds < 0).mean() >= 0.9


def test_labels_that_only_repeat_the_blend_flag_few_more_benign_texts_with_the_shipped_l2() -> None:
    # Two harmful examples per benign one (as K per label gives a source with two harmful
    # categories), in the embedding's 384 dimensions, labelled as the calibrated blend says: there
    # is nothing to learn, so a head that moves decisions only scatters them. With the L2 of 0.2
    # it once shipped, that scatter flagged 4.2 points more of the benign texts (mean over seeds);
    # on a real source (ethos) the same scatter took its benign texts flagged from 27% to 42%.
    config = ScoringConfig.load(DEFAULT_SCORING_PATH).examples
    dim, added, rows = 384, 150, 3000
    rises = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        vectors = rng.normal(size=(rows, dim))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        base = rng.normal(0.7, 1.5, rows).astype(np.float32)
        harmful = rng.random(rows) < 1.0 / (1.0 + np.exp(-base))
        labels = [Category.HATE_SPEECH if h else Category.LOW_RISK for h in harmful[:added]]
        examples = RuntimeExamples(dim, config)
        ids = [f"r{i}" for i in range(added)]
        examples.add(vectors[:added], ids, labels, base[:added], "a")
        test, count = slice(added, rows), rows - added
        after = examples.adjust(vectors[test], ["a"] * count, base[test], mix(count))
        benign = ~harmful[test]
        rises.append(np.mean(after.log_odds[benign] > 0) - np.mean(base[test][benign] > 0))
    assert np.mean(rises) <= 0.03
