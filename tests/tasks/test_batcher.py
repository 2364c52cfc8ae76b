"""The batcher's drain tick: how long it keeps the stream read (on a clock of its own), and
which batches it sends to a queue that already holds one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis

import tasks.batcher
from core.settings import Settings
from core.stream import ScreeningStream
from tasks.runtime import Runtime
from tests.factories import AUTH, event_body, make_app


class Clock:
    """A monotonic clock that moves only when a read takes time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_drain_keeps_reading_until_the_next_tick_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(drain_interval_s=1.0, read_block_ms=100)
    clock, reads = Clock(), []

    def read_next(_: Any, count: int, block_ms: int) -> tuple[int, list[Any]]:
        reads.append(clock.now)
        clock.now += 1 / 64  # entries keep coming: each read returns at once, with nothing new
        return 0, []

    current = SimpleNamespace(
        settings=settings,
        screening=SimpleNamespace(shards=[]),
        router=SimpleNamespace(pick=lambda: ("screen.cpu", 0)),
    )
    monkeypatch.setattr(tasks.batcher, "runtime", lambda: current)
    monkeypatch.setattr(tasks.batcher, "read_next", read_next)
    monkeypatch.setattr(tasks.batcher.time, "monotonic", clock)
    started = clock.now
    assert tasks.batcher.drain() == {"batches": 0, "events": 0}
    # The stream had a reader for the whole interval, up to when the next tick begins.
    assert reads[0] == started and clock.now - started == 1.0 and len(reads) == 64


def test_a_queue_holding_a_batch_gets_no_partial_batch_but_a_full_one(
    redis_url: str, redis_client: redis.Redis, worker_side: Runtime
) -> None:
    worker_side.settings = worker_side.settings.model_copy(
        update={"batch_size": 5, "drain_interval_s": 0.05}
    )
    worker_side.router.heartbeat("cpu@test", ["screen.cpu"])
    redis_client.lpush("screen.cpu", "a batch its worker has not taken yet")
    stream = ScreeningStream.from_settings(redis_client, worker_side.settings)
    web = make_app(redis_url).test_client()
    for count in (3, 2):
        batch = {"events": [event_body() for _ in range(count)]}
        assert web.post("/v1/events/batch", json=batch, headers=AUTH).status_code == 200
        if count == 3:
            # Three new events: the waiting batch takes them in when it starts.
            assert tasks.batcher.drain() == {"batches": 0, "events": 0}
            assert stream.unread(10) == 3
    assert tasks.batcher.drain() == {"batches": 1, "events": 5}
    assert stream.unread(10) == 0 and stream.ledger().low == 5
