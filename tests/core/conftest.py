"""Fixtures of the core tests: a small reference set and an engine on the real packaged model."""

from __future__ import annotations

import csv
import gzip
import io
import random
from pathlib import Path

import pytest

from core.reference import DEFAULT_REFERENCE_PATH

ROOT = Path(__file__).resolve().parents[2]


def write_small_reference(path: Path, per_label: int = 40, seed: int = 0) -> Path:
    """A slice of the shipped reference set: `per_label` rows of each harmful label and six
    times as many LOW_RISK rows (benign text is the common case), fixed seed."""
    rows = list(
        csv.DictReader(io.StringIO(gzip.decompress(DEFAULT_REFERENCE_PATH.read_bytes()).decode()))
    )
    random.Random(seed).shuffle(rows)
    kept: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        bucket = kept.setdefault(row["label"], [])
        if len(bucket) < per_label * (6 if row["label"] == "LOW_RISK" else 1):
            bucket.append(row)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["id", "text", "label", "source"])
        writer.writeheader()
        for bucket in kept.values():
            writer.writerows(bucket)
    return path


@pytest.fixture(scope="session")
def small_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 480-row reference CSV drawn from the shipped set."""
    return write_small_reference(tmp_path_factory.mktemp("reference") / "reference.csv")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where exported models are cached between test runs (the project's var/models)."""
    return ROOT / "var" / "models"
