"""The linear head: solved from per-source statistics, saved and loaded as plain arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.screening.scoring.head import HeadStatistics, LinearHead


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated clusters labelled 0, 2 and 3 (classes 1 and 4 never occur)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[4, 0, 0], [0, 4, 0], [0, 0, 4]], dtype=np.float32)
    labels = np.repeat([0, 2, 3], 50)
    points = centres[np.repeat([0, 1, 2], 50)] + rng.normal(0, 0.5, (150, 3)).astype(np.float32)
    return points.astype(np.float32), labels.astype(np.int64)


def test_saved_head_scores_the_same(tmp_path: Path) -> None:
    points, labels = blobs()
    head = HeadStatistics(points, labels, ["a"] * 150, n_classes=5).solve(["a"])
    head.save(tmp_path / "head.npz")
    again = LinearHead.load(tmp_path / "head.npz")
    assert np.array_equal(head.scores(points), again.scores(points))


def test_missing_head_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        LinearHead.load(tmp_path / "absent.npz")


def test_ridge_from_source_statistics_equals_ridge_on_equally_weighted_rows() -> None:
    points, labels = blobs()
    sources = ["a"] * 100 + ["b"] * 50
    stats = HeadStatistics(points, labels, sources, n_classes=5)
    head = stats.solve(["a", "b"], regularisation=0.1)
    weights = np.where(np.array(sources) == "a", 0.5 / 100, 0.5 / 50)
    design = np.hstack([points, np.ones((150, 1))])
    targets = np.eye(5)[labels]
    penalty = 0.1 * np.eye(4)
    penalty[-1, -1] = 0
    direct = np.linalg.solve(
        design.T @ (design * weights[:, None]) + penalty, design.T @ (targets * weights[:, None])
    )
    assert np.allclose(head.weights, direct[:-1], atol=1e-4)
    assert (head.scores(points).argmax(axis=1) == labels).mean() > 0.95


def test_a_head_without_one_source_differs_from_the_full_one() -> None:
    points, labels = blobs()
    stats = HeadStatistics(points, labels, ["a"] * 100 + ["b"] * 50, n_classes=5)
    assert stats.sources == ["a", "b"]
    assert not np.allclose(stats.solve(["a"]).weights, stats.solve(["a", "b"]).weights)


def test_source_weights_scale_each_sources_share_of_the_ridge() -> None:
    points, labels = blobs()
    sources = ["a"] * 100 + ["b"] * 50
    stats = HeadStatistics(points, labels, sources, n_classes=5)
    head = stats.solve(["a", "b"], regularisation=0.1, weights={"b": 0.5})
    weights = np.where(np.array(sources) == "a", (2 / 3) / 100, (1 / 3) / 50)
    design = np.hstack([points, np.ones((150, 1))])
    targets = np.eye(5)[labels]
    penalty = 0.1 * np.eye(4)
    penalty[-1, -1] = 0
    direct = np.linalg.solve(
        design.T @ (design * weights[:, None]) + penalty, design.T @ (targets * weights[:, None])
    )
    assert np.allclose(head.weights, direct[:-1], atol=1e-4)
    assert np.allclose(
        stats.solve(["a", "b"], weights={"b": 0.0}).weights, stats.solve(["a"]).weights
    )
