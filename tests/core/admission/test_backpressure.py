"""BacklogMonitor reads the backlog at most once per interval, trips at its high-water mark, and
refuses a tenant over its share while it still admits the others."""

from __future__ import annotations

import pytest

from core.admission.backpressure import BacklogMonitor
from core.errors import StoreUnavailable
from core.stream import Backlog


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reading_is_cached_for_the_refresh_interval() -> None:
    readings = iter([10, 20, 30])
    calls: list[int] = []

    def read() -> Backlog:
        value = next(readings)
        calls.append(value)
        return Backlog(value)

    clock = Clock()
    monitor = BacklogMonitor(read, limit=100, refresh_s=0.5, clock=clock)
    assert [monitor.level().total for _ in range(100)] == [10] * 100
    clock.now = 0.4
    assert monitor.level().total == 10
    clock.now = 0.5
    assert monitor.level().total == 20
    assert calls == [10, 20]


def test_trips_at_eighty_percent_of_the_limit() -> None:
    level = 0
    monitor = BacklogMonitor(lambda: Backlog(level), limit=100, high_water=0.8, refresh_s=0.0)
    level = 79
    assert not monitor.overloaded()
    level = 80
    assert monitor.overloaded()


def test_failed_reading_raises_and_is_retried_next_call() -> None:
    outcomes: list[Backlog | Exception] = [StoreUnavailable("down"), Backlog(5)]

    def read() -> Backlog:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monitor = BacklogMonitor(read, limit=100, refresh_s=60, clock=Clock())
    with pytest.raises(StoreUnavailable):
        monitor.level()
    assert monitor.level().total == 5


def test_a_tenant_over_its_share_is_refused_while_the_others_are_admitted() -> None:
    backlog = Backlog(500, {"beta": 500})
    monitor = BacklogMonitor(lambda: backlog, limit=1000, high_water=0.8, tenants=2)
    assert monitor.share == 400
    refusal = monitor.refusal("beta")
    assert refusal is not None and (refusal.tenant, refusal.level, refusal.limit) == (
        "beta",
        500,
        400,
    )
    assert "'beta'" in refusal.message() and "400" in refusal.message()
    assert monitor.refusal("alpha") is None
    assert not monitor.overloaded()


def test_when_every_tenant_together_fills_the_queue_all_are_refused() -> None:
    backlog = Backlog(800, {"alpha": 399, "beta": 401})
    monitor = BacklogMonitor(lambda: backlog, limit=1000, high_water=0.8, tenants=2)
    refusal = monitor.refusal("alpha")
    assert refusal is not None and refusal.tenant is None and monitor.overloaded()
