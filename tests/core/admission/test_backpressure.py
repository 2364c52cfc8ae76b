"""BacklogMonitor reads the backlog at most once per interval and trips at its high-water mark."""

from __future__ import annotations

import pytest

from core.admission.backpressure import BacklogMonitor
from core.errors import StoreUnavailable


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reading_is_cached_for_the_refresh_interval() -> None:
    readings = iter([10, 20, 30])
    calls: list[int] = []

    def read() -> int:
        value = next(readings)
        calls.append(value)
        return value

    clock = Clock()
    monitor = BacklogMonitor(read, limit=100, refresh_s=0.5, clock=clock)
    assert [monitor.level() for _ in range(100)] == [10] * 100
    clock.now = 0.4
    assert monitor.level() == 10
    clock.now = 0.5
    assert monitor.level() == 20
    assert calls == [10, 20]


def test_trips_at_eighty_percent_of_the_limit() -> None:
    level = 0
    monitor = BacklogMonitor(lambda: level, limit=100, high_water=0.8, refresh_s=0.0)
    level = 79
    assert not monitor.overloaded()
    level = 80
    assert monitor.overloaded()


def test_failed_reading_raises_and_is_retried_next_call() -> None:
    outcomes: list[int | Exception] = [StoreUnavailable("down"), 5]

    def read() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monitor = BacklogMonitor(read, limit=100, refresh_s=60, clock=Clock())
    with pytest.raises(StoreUnavailable):
        monitor.level()
    assert monitor.level() == 5
