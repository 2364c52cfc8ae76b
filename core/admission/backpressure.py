"""Backpressure: a cached view of the stream backlog, refreshed at most once per interval."""

from __future__ import annotations

import time
from collections.abc import Callable


class BacklogMonitor:
    """Tells whether the backlog has passed its high-water mark without a round trip per call.

    The backlog is read at most once per `refresh_s`; in between, every caller sees the last
    reading. Concurrent callers (gevent greenlets) never refresh twice at once: while one
    refreshes, the others use the previous reading.
    """

    def __init__(
        self,
        read_backlog: Callable[[], int],
        limit: int,
        high_water: float = 0.8,
        refresh_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read_backlog
        self.limit = limit
        self.threshold = int(limit * high_water)
        self.refresh_s = refresh_s
        self._clock = clock
        self._level = 0
        self._read_at = float("-inf")
        self._refreshing = False

    def level(self) -> int:
        """Return the backlog, reading it again when the last reading is stale."""
        now = self._clock()
        if now - self._read_at >= self.refresh_s and not self._refreshing:
            self._refreshing = True
            try:
                self._level = self._read()
                self._read_at = now
            finally:
                self._refreshing = False
        return self._level

    def overloaded(self, level: int | None = None) -> bool:
        """Whether new events should be refused until the backlog (or `level`) drains."""
        return (self.level() if level is None else level) >= self.threshold
