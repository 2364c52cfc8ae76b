"""The bench summary: one row per goal, read from the benchmarks' JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import GOALS, load_reports, render, rows

INGEST = {
    "ratios": {"b_over_a": 0.81, "c_over_d": 0.72},
    "b_single": {"half": {"p99_ms": 12.5}, "worker_rss_mb": {"11": 84.0, "12": 93.5}},
    "c_batch": {"worker_rss_mb": {"13": 88.0}},
}
SCREEN = {
    "ratio_cold_over_onnx_batched": 0.85,
    "ratio_warm_over_onnx_batched": 4.2,
    "ratio_cold_over_encode": 2.3,
}


def _table(tmp_path: Path) -> dict[str, list[str]]:
    """Write the sample reports (and a broken file) and return the table's rows by figure."""
    (tmp_path / "ingest.json").write_text(json.dumps(INGEST))
    (tmp_path / "screen.json").write_text(json.dumps(SCREEN))
    (tmp_path / "broken.json").write_text("{not json")
    return {row[1]: row for row in rows(load_reports(tmp_path))}


def test_each_goal_is_one_row_with_its_value_bound_and_verdict(tmp_path: Path) -> None:
    table = _table(tmp_path)
    assert len(table) == len(GOALS)
    assert table["POST /v1/events / bare Flask, (b)/(a)"][2:] == ["0.81", ">= 0.75", "yes"]
    assert table["batch of 500 / raw pipelined XADD, (c)/(d)"][2:] == ["0.72", ">= 0.85", "NO"]
    assert table["p99 /v1/events half load, ms"][2:] == ["12.5", "<= 25", "yes"]
    assert table["screening cold / ONNX batched"][2:] == ["0.85", ">= 0.8", "yes"]


def test_worker_rss_is_the_largest_worker_of_any_run_of_the_app(tmp_path: Path) -> None:
    assert _table(tmp_path)["web worker RSS after the benchmark, MB"][2:] == [
        "93.5",
        "<= 90",
        "NO",
    ]


def test_a_figure_without_a_goal_is_shown_but_not_judged(tmp_path: Path) -> None:
    assert _table(tmp_path)["screening warm / ONNX batched"][2:] == ["4.2", "-", "-"]


def test_a_benchmark_not_run_or_unreadable_is_reported_as_not_run(tmp_path: Path) -> None:
    table = _table(tmp_path)
    assert table["end to end / engine alone"][2:] == ["", ">= 0.9", "not run"]
    assert table["archiver / plain COPY"][4] == "not run"


def test_the_table_is_aligned_with_a_header(tmp_path: Path) -> None:
    lines = render(list(_table(tmp_path).values())).splitlines()
    assert lines[0].split() == ["bench", "figure", "value", "goal", "met"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == len(GOALS) + 2
    column = lines[0].index("goal")
    assert all(line[column - 2 : column] == "  " for line in lines[2:])
