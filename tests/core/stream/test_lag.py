"""The consumer group's unread entries on a real Redis, counted without reading them."""

from __future__ import annotations

import redis

from core.stream import ScreeningStream
from core.stream.lag import GroupLag
from tests.factories import ingest


def test_the_lag_counts_what_no_consumer_has_read_up_to_a_limit_and_reads_nothing(
    redis_client: redis.Redis,
) -> None:
    lag, stream = GroupLag(redis_client), ScreeningStream(redis_client)
    assert lag.count(10) == 0  # no stream yet
    stream.ensure_group()
    ingest(redis_client, 5)
    assert lag.count(10) == 5 and lag.count(3) == 3
    assert len(stream.read("c1", 2)) == 2
    assert lag.count(10) == 3 and stream.unread(10) == 3
    assert len(stream.read("c2", 10)) == 3  # counting took none of them
    assert lag.count(10) == 0
