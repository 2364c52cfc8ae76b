"""Few-shot measurement: quality after moderator labels become runtime examples.

Two kinds of label sets, both applied to one analysis of a source (crossval.adapted):

- K per label: up to K rows of every label of the source (nested in K);
- review mix: what moderators send back in practice, reviews of decisions the engine flagged,
  so mostly confirmations of high-risk decisions (the row's true harmful label) plus overturns
  to LOW_RISK where the flagged row was benign.

Each curve is measured on the same rows at every point: those outside its largest label set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from core.models import Category
from core.quality import crossval
from core.quality.evaluation import Flags, LabelledTexts, report
from core.screening.engine import Analysis, ScreeningEngine

CURVE_KS = (0, 10, 25, 50, 100)
REVIEW_SIZES = (0, 25, 50, 100)


def flagged_share(predicted: Sequence[Category]) -> float:
    """The share of texts the engine calls harmful."""
    return round(float(np.mean([c is not Category.LOW_RISK for c in predicted])), 4)


def _point(
    remaining: LabelledTexts, predicted: list[Category], peer: Flags, added: int
) -> dict[str, Any]:
    """One point of a curve: binary quality, the peer's, SPAM recall and benign flagged."""
    result = report(remaining, predicted, peer)
    truth = remaining.labels
    spam = [p for t, p in zip(truth, predicted, strict=True) if t is Category.SPAM]
    benign = [p for t, p in zip(truth, predicted, strict=True) if t is Category.LOW_RISK]
    return {
        "added": added,
        "binary": result["binary"],
        "peer_macro_f1": result["peer"]["binary"]["macro_f1"],
        "spam_recall": round(float(np.mean([p is Category.SPAM for p in spam])), 4)
        if spam
        else None,
        "benign_flagged": flagged_share(benign) if benign else None,
    }


def per_label_curve(
    engine: ScreeningEngine,
    data: LabelledTexts,
    analysis: Analysis,
    peer: Flags,
    ks: Sequence[int] = CURVE_KS,
) -> dict[str, Any]:
    """Quality after K examples per label of the source, for each K."""
    rows = np.setdiff1d(np.arange(len(data)), crossval.adapt_sample(data.labels, max(ks)))
    remaining = data.select(np.isin(np.arange(len(data)), rows))
    curve: dict[str, Any] = {}
    for k in ks:
        examples = crossval.adapt_sample(data.labels, k)
        predicted = crossval.adapted(engine, analysis, examples, data.labels, rows=rows)
        curve[str(k)] = _point(remaining, predicted, peer[rows], len(examples))
    return curve


def review_sample(predicted: Sequence[Category], size: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """Up to `size` of the rows the engine flagged, seeded and nested in `size`."""
    flagged = np.flatnonzero([c is not Category.LOW_RISK for c in predicted])
    chosen = np.random.default_rng(seed).permutation(flagged)[:size]
    return np.sort(chosen)


def review_curve(
    engine: ScreeningEngine,
    data: LabelledTexts,
    analysis: Analysis,
    peer: Flags,
    sizes: Sequence[int] = REVIEW_SIZES,
) -> dict[str, Any]:
    """Quality after reviews of flagged rows (confirmations and overturns), for each count."""
    before = crossval.categories(engine, analysis)
    rows = np.setdiff1d(np.arange(len(data)), review_sample(before, max(sizes)))
    remaining = data.select(np.isin(np.arange(len(data)), rows))
    curve: dict[str, Any] = {}
    for size in sizes:
        reviewed = review_sample(before, size)
        predicted = crossval.adapted(engine, analysis, reviewed, data.labels, rows=rows)
        point = _point(remaining, predicted, peer[rows], len(reviewed))
        point["overturned"] = int(sum(data.labels[i] is Category.LOW_RISK for i in reviewed))
        curve[str(size)] = point
    return curve


def format_curves(name: str, curves: dict[str, dict[str, Any]]) -> str:
    """A source's curves as one line each: macro-F1 and benign flagged at each point."""
    lines = []
    for kind, curve in curves.items():
        points = "  ".join(
            f"{key}:{p['binary']['macro_f1']:.3f}"
            + ("" if p["benign_flagged"] is None else f"/{p['benign_flagged']:.3f}")
            for key, p in curve.items()
        )
        lines.append(f"  {name:<18} {kind:<10} macro-F1/benign flagged  {points}")
    return "\n".join(lines)
