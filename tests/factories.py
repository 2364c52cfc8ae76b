"""Builders of valid request bodies and reference sets for tests, and where things are."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH

ROOT = Path(__file__).resolve().parents[1]  # the repository
SHARED_DATA = ROOT.parent / "shared" / "data"  # the labelled data next to the checkout

_ids = itertools.count()


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid event body with a fresh event_id; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "event_id": f"evt-{next(_ids)}",
        "platform": "discord",
        "event_type": "message",
        "user_id": "user-1",
        "channel_id": "general",
        "content": "hello there, how is everyone doing today?",
        "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {"client": "tests"},
    }
    body.update(overrides)
    return body


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
