"""IngestCombiner: concurrent callers' events go to Redis in shared script calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
import redis

from core.errors import StoreUnavailable
from core.stream import EventStream, IngestCombiner, IngestRequest, IngestResult
from tests.factories import make_event


class HeldStream:
    """An EventStream whose first call waits for `release`, so that others queue behind it;
    it records each call's requests and can fail the calls it is told to."""

    def __init__(self, stream: EventStream, fail_calls: frozenset[int] = frozenset()) -> None:
        self.stream = stream
        self.fail_calls = fail_calls
        self.calls: list[list[IngestRequest]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def ingest_many(
        self, requests: Sequence[IngestRequest], now_ms: int | None = None
    ) -> list[list[IngestResult]]:
        self.calls.append(list(requests))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if len(self.calls) in self.fail_calls:
            raise StoreUnavailable("could not queue events: connection refused")
        return self.stream.ingest_many(requests, now_ms)


def _queue_behind_first(combiner: IngestCombiner, held: HeldStream, callers: int, size: int = 1):
    """Start one caller (held in its call) and `callers` more queued behind it; each caller's
    results or error, by caller, once the first call is released."""
    outcomes: dict[int, list[IngestResult] | BaseException] = {}

    def call(n: int, count: int) -> None:
        try:
            outcomes[n] = combiner.ingest(
                [make_event() for _ in range(count)], f"rid-{n}", tenant="default"
            )
        except StoreUnavailable as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=call, args=(0, 1))]
    threads[0].start()
    assert held.entered.wait(10)
    for n in range(1, callers + 1):
        threads.append(threading.Thread(target=call, args=(n, size)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while combiner.waiting() < callers and time.monotonic() < deadline:
        time.sleep(0.005)
    held.release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_callers_arriving_during_a_call_share_the_next_one_and_get_their_own_results(
    redis_client: redis.Redis,
) -> None:
    held = HeldStream(EventStream(redis_client))
    outcomes = _queue_behind_first(IngestCombiner(held), held, callers=9)
    assert [len(call) for call in held.calls] == [1, 9]
    entries = {i.decode(): f for i, f in redis_client.xrange("events:ingest")}
    assert len(entries) == 10
    for n, results in outcomes.items():
        assert not isinstance(results, BaseException)
        [result] = results
        assert result.status == "accepted"
        assert entries[result.stream_id][b"request_id"] == f"rid-{n}".encode()


def test_a_failed_shared_call_fails_each_caller_in_it_and_the_next_caller_is_served(
    redis_client: redis.Redis,
) -> None:
    held = HeldStream(EventStream(redis_client), fail_calls=frozenset({2}))
    combiner = IngestCombiner(held)
    outcomes = _queue_behind_first(combiner, held, callers=5)
    assert not isinstance(outcomes.pop(0), BaseException)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes.values())
    assert len(outcomes) == 5
    [result] = combiner.ingest([make_event()], tenant="default")
    assert result.status == "accepted"
    assert redis_client.xlen("events:ingest") == 2


def test_a_shared_call_carries_at_most_max_events_unless_one_request_is_larger(
    redis_client: redis.Redis,
) -> None:
    held = HeldStream(EventStream(redis_client))
    combiner = IngestCombiner(held, max_events=5)
    outcomes = _queue_behind_first(combiner, held, callers=6, size=2)
    assert sorted(len(results) for results in outcomes.values() if isinstance(results, list)) == [
        1, 2, 2, 2, 2, 2, 2,
    ]  # fmt: skip
    assert [sum(len(r.events) for r in call) for call in held.calls] == [1, 4, 4, 4]
    [results] = [combiner.ingest([make_event() for _ in range(7)], tenant="default")]
    assert len(results) == 7
    assert redis_client.xlen("events:ingest") == 20


@pytest.mark.parametrize("callers", [1, 30])
def test_every_caller_of_a_busy_combiner_gets_an_answer(redis_url: str, callers: int) -> None:
    combiner = IngestCombiner(EventStream(redis.Redis.from_url(redis_url, max_connections=64)))
    answers: list[int] = []

    def call() -> None:
        for _ in range(20):
            answers.append(len(combiner.ingest([make_event()], tenant="default")))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [1] * (20 * callers)
    assert redis.Redis.from_url(redis_url).xlen("events:ingest") == 20 * callers
