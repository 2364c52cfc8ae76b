"""`make bench` (last step) or `python -m bench.report`: every ratio against its goal, one table.

Reads the JSON reports the benchmarks left under var/bench/ (it measures nothing itself) and
prints one row per goal: the figure, its value, the goal and whether it is met. A benchmark that
has not been run shows as "not run".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"

Report = Mapping[str, Any]


@dataclass(frozen=True)
class Goal:
    """One figure read from one benchmark's report, and the bound it should meet."""

    report: str  # file stem under var/bench, e.g. "ingest"
    figure: str
    read: Callable[[Report], float | None]
    at_least: float | None = None
    at_most: float | None = None

    def bound(self) -> str:
        """The goal as text: ">= 0.75", "<= 25" or "-" where the figure is only shown."""
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        if self.at_most is not None:
            return f"<= {self.at_most:g}"
        return "-"

    def met(self, value: float) -> bool | None:
        """Whether a value meets the goal; None where the figure has no numeric goal."""
        if self.at_least is not None:
            return value >= self.at_least
        if self.at_most is not None:
            return value <= self.at_most
        return None


def path(*keys: str) -> Callable[[Report], float | None]:
    """A reader of the number at a key path, or None where the report lacks it."""

    def read(report: Report) -> float | None:
        value: Any = report
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
        return float(value) if isinstance(value, int | float) else None

    return read


def max_worker_rss(report: Report) -> float | None:
    """The largest web worker RSS (MB) after any of the ingest benchmark's runs of the app."""
    sizes = [
        float(mb)
        for case in ("b_single", "c_batch")
        for mb in (report.get(case, {}).get("worker_rss_mb") or {}).values()
    ]
    return max(sizes) if sizes else None


GOALS = (
    Goal("ingest", "POST /v1/events / bare Flask, (b)/(a)", path("ratios", "b_over_a"), 0.75),
    Goal("ingest", "p99 /v1/events half load, ms", path("b_single", "half", "p99_ms"), at_most=25),
    Goal("ingest", "batch of 500 / raw pipelined XADD, (c)/(d)", path("ratios", "c_over_d"), 0.85),
    Goal("ingest", "web worker RSS after the benchmark, MB", max_worker_rss, at_most=90),
    Goal("screen", "screening cold / ONNX batched", path("ratio_cold_over_onnx_batched"), 0.8),
    Goal("screen", "screening warm / ONNX batched", path("ratio_warm_over_onnx_batched")),
    Goal("screen", "screening cold / sentence-transformers", path("ratio_cold_over_encode")),
    Goal("e2e", "end to end / engine alone", path("pipeline_over_engine"), 0.9),
    Goal("e2e", "end to end p50 at half load, ms", path("half_rate", "p50_ms"), at_most=100),
    Goal("e2e", "end to end p99 at half load, ms", path("half_rate", "p99_ms"), at_most=500),
    Goal("archive", "archiver / plain COPY", path("archiver_over_ceiling"), 0.5),
    Goal("console", "console queue page, 50 rows, server ms", path("queue_page_ms"), at_most=200),
    Goal(
        "gpu_screen",
        "GPU screening path, events/s",
        path("pipelined: pool rules + embed + search"),
        20_000,
    ),
)  # fmt: skip


def save(name: str, report: Report, directory: Path = DEFAULT_DIR) -> Path:
    """Write one benchmark's report as <directory>/<name>.json, where the table reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / f"{name}.json"
    file.write_text(json.dumps(report, indent=2))
    return file


def load_reports(directory: Path) -> dict[str, Report]:
    """Every <name>.json under a directory, by name; unreadable files are left out."""
    reports: dict[str, Report] = {}
    for file in sorted(directory.glob("*.json")):
        try:
            loaded = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(loaded, dict):
            reports[file.stem] = loaded
    return reports


def rows(reports: Mapping[str, Report], goals: tuple[Goal, ...] = GOALS) -> list[list[str]]:
    """One row per goal: benchmark, figure, value, goal, and "yes", "NO", "-" or "not run"."""
    table = []
    for goal in goals:
        report = reports.get(goal.report)
        value = goal.read(report) if report is not None else None
        if value is None:
            table.append([goal.report, goal.figure, "", goal.bound(), "not run"])
            continue
        met = goal.met(value)
        verdict = "-" if met is None else ("yes" if met else "NO")
        table.append([goal.report, goal.figure, f"{value:g}", goal.bound(), verdict])
    return table


def render(table: list[list[str]]) -> str:
    """The rows as an aligned plain-text table with a header."""
    header = ["bench", "figure", "value", "goal", "met"]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *table]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main() -> None:
    """Print the table of the reports under --dir (var/bench by default)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    options = parser.parse_args()
    sys.stdout.write(render(rows(load_reports(options.dir))))


if __name__ == "__main__":
    main()
