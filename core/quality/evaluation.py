"""Quality measurement: binary and per-category metrics, the peer baseline, and the report."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.models import HARMFUL_CATEGORIES, Category

PEER_NAME = "alt-profanity-check"

Flags = npt.NDArray[np.bool_]


@dataclass
class LabelledTexts:
    """Texts with their true category and the source they came from."""

    texts: list[str]
    labels: list[Category]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def harmful(self) -> Flags:
        """Whether each text's true label is anything but LOW_RISK."""
        return np.array([label is not Category.LOW_RISK for label in self.labels])

    def select(self, keep: Flags) -> LabelledTexts:
        """The rows where `keep` is true."""
        rows = np.flatnonzero(keep)
        return LabelledTexts(
            [self.texts[i] for i in rows],
            [self.labels[i] for i in rows],
            [self.sources[i] for i in rows],
        )


def read_labelled_csv(path: Path, source: str | None = None) -> LabelledTexts:
    """Read a CSV with `text` and `label` columns (and `source`, if present)."""
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    texts, labels, sources = [], [], []
    for number, row in enumerate(csv.DictReader(io.StringIO(content))):
        try:
            labels.append(Category(row["label"].strip()))
            texts.append(row["text"])
        except (KeyError, ValueError, AttributeError):
            raise ConfigError(f"{path}: row {number + 2} needs a text and a valid label") from None
        sources.append(source or row.get("source") or path.stem)
    return LabelledTexts(texts, labels, sources)


def read_shared_sources(shared: Path) -> LabelledTexts:
    """Every source of the shared data directory (raw/<name>/<name>_normalized.csv)."""
    files = sorted((shared / "raw").glob("*/*_normalized.csv"))
    if not files:
        raise ConfigError(f"no <name>_normalized.csv files under {shared / 'raw'}")
    merged = LabelledTexts([], [], [])
    for path in files:
        part = read_labelled_csv(path, source=path.parent.name)
        merged.texts += part.texts
        merged.labels += part.labels
        merged.sources += part.sources
    return merged


def binary_metrics(truth: Flags, predicted: Flags) -> dict[str, float]:
    """Harmful-vs-LOW_RISK accuracy, macro-F1 (mean F1 of both classes), precision and recall."""

    def f1(positive_truth: Flags, positive_predicted: Flags) -> tuple[float, float, float]:
        tp = float(np.sum(positive_truth & positive_predicted))
        precision = tp / max(1.0, float(np.sum(positive_predicted)))
        recall = tp / max(1.0, float(np.sum(positive_truth)))
        return precision, recall, 2 * precision * recall / max(1e-12, precision + recall)

    precision, recall, f1_harmful = f1(truth, predicted)
    _, _, f1_low = f1(~truth, ~predicted)
    present = [f1_harmful] if truth.all() else [f1_low] if not truth.any() else [f1_harmful, f1_low]
    return {
        "accuracy": round(float(np.mean(truth == predicted)) if len(truth) else 0.0, 4),
        "macro_f1": round(float(np.mean(present)), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
    }


def category_metrics(truth: Sequence[Category], predicted: Sequence[Category]) -> dict[str, Any]:
    """Precision, recall, F1 and support of each category present in truth or predictions."""
    out: dict[str, Any] = {}
    for category in Category:
        is_true = np.array([label is category for label in truth])
        is_predicted = np.array([label is category for label in predicted])
        if not is_true.any() and not is_predicted.any():
            continue
        tp = float(np.sum(is_true & is_predicted))
        precision = tp / max(1.0, float(is_predicted.sum()))
        recall = tp / max(1.0, float(is_true.sum()))
        out[category.value] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(2 * precision * recall / max(1e-12, precision + recall), 4),
            "support": int(is_true.sum()),
        }
    return out


def pooled_categories(
    parts: Sequence[tuple[Sequence[Category], Sequence[Category]]],
) -> dict[str, Any]:
    """Per harmful category, precision, recall and F1 over the (truth, predicted) parts pooled,
    counting only the parts whose truth carries that category (the left-out sources with it)."""
    out: dict[str, Any] = {}
    for category in HARMFUL_CATEGORIES:
        carrying = [(t, p) for t, p in parts if category in t]
        if not carrying:
            continue
        truth = [label for t, _ in carrying for label in t]
        predicted = [label for _, p in carrying for label in p]
        out[category.value] = category_metrics(truth, predicted)[category.value]
        out[category.value]["sources"] = len(carrying)
    return out


def peer_predictions(texts: Sequence[str]) -> Flags:
    """alt-profanity-check's harmful verdicts (probability >= 0.5) on the same texts."""
    from profanity_check import predict_prob

    return np.asarray(predict_prob(list(texts))) >= 0.5


def report(
    data: LabelledTexts, predicted: Sequence[Category], peer: Flags | None = None
) -> dict[str, Any]:
    """The evaluation report of one dataset: binary, per category and the peer's binary."""
    truth = data.harmful()
    flagged = np.array([label is not Category.LOW_RISK for label in predicted])
    result: dict[str, Any] = {
        "n": len(data),
        "binary": binary_metrics(truth, flagged),
        "per_category": category_metrics(data.labels, predicted),
    }
    if peer is not None:
        result["peer"] = {"name": PEER_NAME, "binary": binary_metrics(truth, peer)}
    return result


def format_table(title: str, result: dict[str, Any]) -> str:
    """A report as aligned text for the terminal."""
    binary = result["binary"]
    lines = [
        f"{title}  (n={result['n']})",
        f"  binary    acc {binary['accuracy']:.3f}  macro-F1 {binary['macro_f1']:.3f}"
        f"  precision {binary['precision']:.3f}  recall {binary['recall']:.3f}",
    ]
    if "peer" in result:
        peer = result["peer"]["binary"]
        lines.append(
            f"  peer      acc {peer['accuracy']:.3f}  macro-F1 {peer['macro_f1']:.3f}"
            f"  ({result['peer']['name']})"
        )
    for category in [Category.LOW_RISK.value, *(c.value for c in HARMFUL_CATEGORIES)]:
        row = result["per_category"].get(category)
        if row:
            lines.append(
                f"  {category:<20} P {row['precision']:.3f}  R {row['recall']:.3f}"
                f"  F1 {row['f1']:.3f}  n {row['support']}"
            )
    return "\n".join(lines)
