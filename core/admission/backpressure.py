"""Backpressure: a cached view of the stream backlog, in all and per tenant, refreshed at most
once per interval, and which tenants it still admits.

Admission is fair between tenants: the backlog's high-water mark (`BACKLOG_HIGH_WATER` x
`BACKLOG_MAX`) is split into equal shares, one per configured tenant, and a tenant whose own
unprocessed events reach its share is refused while every other tenant is still admitted. The
shares add up to the mark, so one tenant's flood can never fill the queue the others need; the
mark itself still holds for all of them together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core.stream import Backlog


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why new events are refused now: whose limit, and how far it is passed."""

    tenant: str | None  # None: the backlog of every tenant together is full
    level: int
    limit: int

    def message(self) -> str:
        """The sentence a 503 carries."""
        if self.tenant is None:
            return (
                f"the queue holds {self.level} unprocessed events (limit {self.limit}); retry later"
            )
        return (
            f"tenant {self.tenant!r} has {self.level} unprocessed events, its share of the "
            f"queue is {self.limit}; retry later"
        )


class BacklogMonitor:
    """Tells whether a tenant's events are admitted without a round trip per call.

    The backlog is read at most once per `refresh_s`; in between, every caller sees the last
    reading. Concurrent callers (gevent greenlets) never refresh twice at once: while one
    refreshes, the others use the previous reading.
    """

    def __init__(
        self,
        read_backlog: Callable[[], Backlog],
        limit: int,
        high_water: float = 0.8,
        refresh_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        *,
        tenants: int = 1,
    ) -> None:
        self._read = read_backlog
        self.limit = limit
        self.threshold = int(limit * high_water)
        self.share = max(1, self.threshold // max(1, tenants))
        self.refresh_s = refresh_s
        self._clock = clock
        self._level = Backlog()
        self._read_at = float("-inf")
        self._refreshing = False

    def level(self) -> Backlog:
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

    def overloaded(self, backlog: Backlog | None = None) -> bool:
        """Whether the backlog of every tenant together has reached its high-water mark."""
        return (self.level() if backlog is None else backlog).total >= self.threshold

    def refusal(self, tenant: str, backlog: Backlog | None = None) -> Refusal | None:
        """Why this tenant's new events are refused now, or None when they are admitted."""
        current = self.level() if backlog is None else backlog
        if current.total >= self.threshold:
            return Refusal(None, current.total, self.threshold)
        own = current.of(tenant)
        if own >= self.share:
            return Refusal(tenant, own, self.share)
        return None
