"""The /metrics endpoint of a worker host, served by the main Celery process.

Prefork children and the main process write their values to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode); the main process serves their sum with
prometheus_client's own HTTP server, plus any collector that reads state at scrape time (the
pipeline worker adds tasks.metrics.pipeline's). A child that exits on purpose removes its live
gauges on `worker_process_shutdown`; one that was killed is noticed at the next scrape (its pid is
gone) and its live gauges are removed then, so a dead process never reports a model or GPU.
Counters of dead children stay in the sum, which is what keeps them monotonic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

_LIVE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """The directory this process's metrics are written to, when in multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists and has not exited (a zombie has)."""
    proc = Path("/proc")
    if proc.is_dir():  # Linux: a killed child stays a zombie until its parent reaps it
        try:
            state = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in {"Z", "X"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostCollector(Collector):
    """The sum of every process's files, after dropping the live gauges of dead processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = MultiProcessCollector(None, path=str(path))

    def sweep(self) -> list[int]:
        """Remove the live-gauge files of processes that no longer exist; their pids."""
        dead = {
            int(match.group(1))
            for name in os.listdir(self.path)
            if (match := _LIVE_FILE.match(name)) and not _alive(int(match.group(1)))
        }
        for pid in dead:
            mark_process_dead(pid, str(self.path))
        return sorted(dead)

    def collect(self) -> Iterator[Metric]:
        """Sweep, then sum the files."""
        self.sweep()
        yield from self.files.collect()


def serve(port: int, host: str, collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """Serve the host's metrics on `port` from a background thread of this process."""
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path is not None:
        registry.register(HostCollector(path))
    for collector in collectors:
        registry.register(collector)
    start_http_server(port, host, registry=registry)
    log.info("metrics_served", host=host, port=port, multiprocess_dir=str(path or ""))
    return registry


def forget_process(pid: int) -> None:
    """Drop an exiting process's live gauges from the host's sum."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(pid, str(path))
