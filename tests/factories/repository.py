"""Where things are (the repository, the labelled data beside it), and a small slice of the
shipped reference set."""

from __future__ import annotations

import csv
import gzip
import io
import random
from pathlib import Path

from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHARED_DATA = ROOT.parent / "shared" / "data"  # the labelled data next to the checkout


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
