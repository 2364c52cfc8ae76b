"""The labelled reference examples: the shipped set (or any CSV of text and label)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.models import CATEGORIES, Category

DEFAULT_REFERENCE_PATH = Path(__file__).parents[1] / "data" / "reference" / "reference.csv.gz"
_CATEGORY_INDEX = {category: i for i, category in enumerate(CATEGORIES)}


@dataclass
class ReferenceSet:
    """Labelled examples: parallel lists of ids, texts, labels and source names."""

    ids: list[str]
    texts: list[str]
    labels: list[Category]
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, path: Path = DEFAULT_REFERENCE_PATH) -> ReferenceSet:
        """Read a CSV (optionally gzipped) with text and label columns, and id/source if present."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read reference set {path}: {exc}") from exc
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
        ids, texts, labels, sources = [], [], [], []
        for number, row in enumerate(reader):
            try:
                label = Category(row["label"].strip())
            except (KeyError, ValueError):
                raise ConfigError(f"{path}: row {number + 2} has no valid label") from None
            texts.append(row["text"])
            labels.append(label)
            sources.append(row.get("source") or path.stem)
            ids.append(row.get("id") or f"{path.stem}:{number}")
        return cls(ids, texts, labels, sources)

    def digest(self) -> str:
        """A short hash of the examples and their labels, for cache keys and decision versions."""
        hasher = hashlib.blake2b(digest_size=8)
        for example_id, text, label in zip(self.ids, self.texts, self.labels, strict=True):
            hasher.update(f"{example_id}\x1f{label.value}\x1f{text}\x1e".encode())
        return hasher.hexdigest()

    def select(self, keep: Sequence[bool] | npt.NDArray[np.bool_]) -> ReferenceSet:
        """The examples where `keep` is true."""
        chosen = [i for i, flag in enumerate(keep) if flag]
        return ReferenceSet(
            [self.ids[i] for i in chosen],
            [self.texts[i] for i in chosen],
            [self.labels[i] for i in chosen],
            [self.sources[i] for i in chosen] if self.sources else [],
        )

    def save(self, path: Path) -> None:
        """Write the examples as a gzipped CSV of id, text, label and source that load() reads."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "text", "label", "source"])
        sources = self.sources or [""] * len(self)
        for row in zip(self.ids, self.texts, self.labels, sources, strict=True):
            writer.writerow([row[0], row[1], row[2].value, row[3]])
        # mtime 0: the same examples always give the same bytes (the card records their sha256).
        path.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0))

    def joined(self, other: ReferenceSet) -> ReferenceSet:
        """These examples followed by another set's."""
        return ReferenceSet(
            self.ids + other.ids,
            self.texts + other.texts,
            self.labels + other.labels,
            self.sources + other.sources,
        )

    def label_indices(self) -> npt.NDArray[np.int64]:
        """Each label as its index in CATEGORIES."""
        return np.array([_CATEGORY_INDEX[label] for label in self.labels], dtype=np.int64)
