"""The archive lag, `archive_lag_seconds`: how old the oldest decision not yet archived is.

Read from Redis at each scrape (the archive group's pending and undelivered entries), not kept by
the archiver: when the archiver is down is exactly when the number must keep growing. Any
process with a Prometheus registry can register this collector.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from core.errors import CoreError
from core.stream import ArchiveFeed

NAME = "archive_lag_seconds"
HELP = "Age of the oldest decision (high, low or dead-lettered) not yet archived; 0 when none."


class ArchiveLagCollector:
    """Yields archive_lag_seconds from the archive group on the decision streams."""

    def __init__(self, feed: ArchiveFeed) -> None:
        self.feed = feed

    def collect(self) -> Iterator[Metric]:
        """One gauge, or nothing when Redis does not answer."""
        try:
            lag = self.feed.lag_seconds()
        except CoreError:
            return
        yield GaugeMetricFamily(NAME, HELP, value=round(lag, 3))
