"""How the console draws a receipt and a history: signal bars, marked evidence, daily columns."""

from __future__ import annotations

from datetime import UTC, datetime

from webapp.console.receipts import daily_columns, marked_segments, signal_bars


def test_signal_bars_go_right_for_harm_left_against_it_widest_first() -> None:
    bars = signal_bars({"bias": -1.0, "rules": 2.0, "head": 1.0})
    assert [b.name for b in bars] == ["rules", "bias", "head"]
    rules, bias, _ = bars
    assert (rules.x, rules.width, rules.share) == (50, 50, 0.5)
    assert (bias.x, bias.width) == (25, 25)
    assert signal_bars({"rules": 0.0}) == []


def test_evidence_is_marked_wherever_it_occurs_in_any_case() -> None:
    segments = marked_segments("Idiot, you idiot!", ["idiot"])
    assert [(s.text, s.marked) for s in segments] == [
        ("Idiot", True), (", you ", False), ("idiot", True), ("!", False),
    ]  # fmt: skip
    assert [(s.text, s.marked) for s in marked_segments("hello", ["absent"])] == [("hello", False)]


def test_content_past_the_searched_length_is_kept_whole_and_unmarked() -> None:
    content = "x" * 25_000 + " idiot"
    segments = marked_segments(content, ["idiot"])
    assert "".join(s.text for s in segments) == content
    assert not any(s.marked for s in segments)


def test_daily_columns_stack_high_over_low_scaled_to_the_busiest_day() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    quiet, busy = daily_columns([(day, 0, 1), (day, 3, 1)], height=60)
    assert (busy.high_height, busy.low_height, busy.high_y, busy.low_y) == (45, 15, 0, 45)
    assert (quiet.high_height, quiet.low_height, quiet.x, busy.x) == (0, 15, 0, 50)
