"""A decision's receipt and a user's history as the pages draw them: bars, marks and a chart.

Everything here is plain data for the templates. Bars and charts are SVG geometry (attributes,
not inline styles, which the console's Content-Security-Policy forbids), and the content is
split into plain and matched segments that the templates escape like any other text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Longest content the highlighter searches; longer content is shown whole, unmarked past it.
_SEARCHED = 20_000


@dataclass(frozen=True, slots=True)
class Bar:
    """One signal's share of the harmful log-odds, drawn from the axis in the middle."""

    name: str
    value: float
    share: float  # of the sum of absolute contributions, 0..1
    x: float  # percent of the chart's width where the bar starts
    width: float  # percent of the chart's width


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the content, marked when a matched rule's evidence covers it."""

    text: str
    marked: bool


@dataclass(frozen=True, slots=True)
class Column:
    """One day of a user's chart: its high- and low-risk decisions as stacked heights."""

    day: datetime
    high: int
    low: int
    x: float
    high_y: float
    high_height: float
    low_y: float
    low_height: float


def signal_bars(signals: dict[str, float]) -> list[Bar]:
    """Each signal's contribution as a bar right (towards harm) or left of the middle axis."""
    total = sum(abs(value) for value in signals.values())
    if total == 0:
        return []
    widest = max(abs(value) for value in signals.values())
    bars = []
    for name, value in sorted(signals.items(), key=lambda item: -abs(item[1])):
        width = 50 * abs(value) / widest
        bars.append(Bar(name, value, abs(value) / total, 50 if value >= 0 else 50 - width, width))
    return bars


def marked_segments(content: str, evidence: list[str]) -> list[Segment]:
    """The content split into runs, each marked when it is one of the evidence strings.

    Evidence is found case-insensitively (rules quote the normalised text in its own case);
    evidence that is not found verbatim is listed with its rule instead.
    """
    searched = content[:_SEARCHED].casefold()
    covered = [False] * len(searched)
    for quote in {q.casefold() for q in evidence if q.strip()}:
        start = searched.find(quote)
        while start != -1:
            for i in range(start, min(start + len(quote), len(covered))):
                covered[i] = True
            start = searched.find(quote, start + len(quote))
    segments: list[Segment] = []
    start = 0
    for i in range(1, len(covered) + 1):
        if i == len(covered) or covered[i] != covered[start]:
            segments.append(Segment(content[start:i], covered[start]))
            start = i
    if len(content) > len(covered):
        segments.append(Segment(content[len(covered) :], False))
    return segments or [Segment(content, False)]


def daily_columns(days: list[tuple[datetime, int, int]], height: float = 60) -> list[Column]:
    """Stacked columns of a user's daily decisions, scaled to the busiest day."""
    busiest = max((high + low for _, high, low in days), default=0) or 1
    step = 100 / max(len(days), 1)
    columns = []
    for n, (day, high, low) in enumerate(days):
        high_height = height * high / busiest
        low_height = height * low / busiest
        columns.append(
            Column(
                day,
                high,
                low,
                n * step,
                height - high_height - low_height,
                high_height,
                height - low_height,
                low_height,
            )
        )
    return columns


def evidence_of(decision: dict[str, Any] | None) -> list[str]:
    """Every evidence string of a decision's matched rules."""
    if not decision:
        return []
    return [quote for flag in decision.get("flags", []) for quote in flag.get("evidence", [])]
