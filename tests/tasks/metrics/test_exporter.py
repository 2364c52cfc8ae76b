"""The worker host's metrics endpoint: the sum of every process's files, without the dead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from tasks.metrics import HostCollector

_WRITE = """
from prometheus_client import Counter, Gauge
Counter("screening_events", "events", ["queue"]).labels("screen.cpu").inc(3)
Gauge("screening_model_info", "info", ["model"], multiprocess_mode="livemax").labels("m").set(1)
"""


def write_metrics(directory: Path) -> None:
    """One process writes a counter and a live gauge there, then exits."""
    subprocess.run(
        [sys.executable, "-c", _WRITE],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
    )


def test_counters_of_exited_processes_add_up_and_their_live_gauges_are_dropped(
    tmp_path: Path,
) -> None:
    write_metrics(tmp_path)
    write_metrics(tmp_path)
    assert len(list(tmp_path.glob("gauge_livemax_*.db"))) == 2
    registry = CollectorRegistry()
    registry.register(HostCollector(tmp_path))
    text = generate_latest(registry).decode()
    assert 'screening_events_total{queue="screen.cpu"} 6.0' in text
    assert "screening_model_info{" not in text  # no process holding the model is alive
    assert list(tmp_path.glob("gauge_livemax_*.db")) == []
