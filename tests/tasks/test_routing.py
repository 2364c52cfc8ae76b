"""QueueRouter on a real Redis: only live queues get batches, the least loaded first."""

from __future__ import annotations

import redis

from tasks.routing import QueueRouter, is_batch_queue

NOW = 1_000_000.0


def router(client: redis.Redis) -> QueueRouter:
    """A router whose heartbeats live 15 s and which queues at most 2 batches per worker."""
    return QueueRouter(client, heartbeat_s=5.0, batches_per_worker=2)


def queue_batches(client: redis.Redis, queue: str, count: int) -> None:
    """Put `count` fake messages in a broker queue list."""
    for i in range(count):
        client.lpush(queue, f"message-{i}")


def test_no_live_worker_means_no_queue(redis_client: redis.Redis) -> None:
    assert router(redis_client).choose(NOW) is None


def test_batches_go_only_to_queues_with_live_workers(redis_client: redis.Redis) -> None:
    routes = router(redis_client)
    routes.heartbeat("gpu0@host", ["screen.gpu0", "screen.sync"], now=NOW)
    queue_batches(redis_client, "screen.gpu0", 1)
    assert routes.live_workers(NOW) == {"screen.gpu0": 1}
    assert routes.choose(NOW) == "screen.gpu0"


def test_the_queue_with_the_least_backlog_per_worker_wins(redis_client: redis.Redis) -> None:
    routes = router(redis_client)
    routes.heartbeat("cpu@a", ["screen.cpu"], now=NOW)
    routes.heartbeat("gpu0@b", ["screen.gpu0"], now=NOW)
    queue_batches(redis_client, "screen.cpu", 1)
    assert routes.choose(NOW) == "screen.gpu0"
    queue_batches(redis_client, "screen.gpu0", 1)
    routes.heartbeat("cpu@c", ["screen.cpu"], now=NOW)  # two workers on the CPU queue now
    assert routes.choose(NOW) == "screen.cpu"


def test_full_queues_hold_the_batcher_back(redis_client: redis.Redis) -> None:
    routes = router(redis_client)
    routes.heartbeat("cpu@a", ["screen.cpu"], now=NOW)
    queue_batches(redis_client, "screen.cpu", 2)
    assert routes.choose(NOW) is None


def test_a_silent_worker_stops_counting(redis_client: redis.Redis) -> None:
    routes = router(redis_client)
    routes.heartbeat("gpu1@a", ["screen.gpu1"], now=NOW)
    assert routes.choose(NOW + 10) == "screen.gpu1"
    assert routes.choose(NOW + 16) is None


def test_a_stopping_worker_is_forgotten_at_once(redis_client: redis.Redis) -> None:
    routes = router(redis_client)
    routes.heartbeat("cpu@a", ["screen.cpu"], now=NOW)
    routes.forget("cpu@a", ["screen.cpu"])
    assert routes.choose(NOW) is None


def test_only_screening_queues_take_batches() -> None:
    assert is_batch_queue("screen.cpu")
    assert is_batch_queue("screen.gpu3")
    assert not is_batch_queue("screen.sync")
    assert not is_batch_queue("pipeline")


def test_the_chosen_queue_says_whether_each_of_its_workers_has_a_batch_waiting(
    redis_client: redis.Redis,
) -> None:
    routes = router(redis_client)
    routes.heartbeat("cpu@a", ["screen.cpu"], now=NOW)
    routes.heartbeat("cpu@b", ["screen.cpu"], now=NOW)
    assert routes.pick(NOW) == ("screen.cpu", False)
    queue_batches(redis_client, "screen.cpu", 1)
    assert routes.pick(NOW) == ("screen.cpu", False)
    queue_batches(redis_client, "screen.cpu", 1)
    assert routes.pick(NOW) == ("screen.cpu", True)
