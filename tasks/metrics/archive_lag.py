"""The archive lag, `archive_lag_seconds`: how old the oldest decision not yet archived is.

Exported by the pipeline worker next to the ledger (tasks.metrics.pipeline), and likewise read from
Redis at each scrape (the archive group's pending and undelivered entries) rather than kept by
the archiver: when the archiver is down is exactly when the number must keep growing.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.errors import CoreError
from core.stream import ArchiveFeed

NAME = "archive_lag_seconds"
HELP = "Age of the oldest decision (high, low or dead-lettered) not yet archived; 0 when none."


class ArchiveLagCollector(Collector):
    """Yields archive_lag_seconds from the archive group on the decision streams (of every
    shard on a Redis Cluster: the oldest of theirs)."""

    def __init__(self, *feeds: ArchiveFeed) -> None:
        self.feeds = feeds

    def describe(self) -> Iterator[Metric]:
        """The family this collector exports (without reading Redis)."""
        yield GaugeMetricFamily(NAME, HELP)

    def collect(self) -> Iterator[Metric]:
        """One gauge, or no sample when Redis does not answer."""
        try:
            lag: float | None = round(max(feed.lag_seconds() for feed in self.feeds), 3)
        except (CoreError, redis.RedisError):
            lag = None
        yield GaugeMetricFamily(NAME, HELP, lag)
