"""Which screening queue gets the next batch: live workers, least backlog, bounded queues.

Workers announce the queues they consume with a heartbeat (a sorted set per queue, scored by
time). The batcher sends a batch to the live queue with the fewest waiting batches per worker,
and holds back (leaving events in the durable stream) once every live queue has enough work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import redis
import structlog

from celeryconfig import SCREEN_QUEUE_PREFIX, SYNC_QUEUE
from core.keys import Keys
from tasks.broker import QueueDepths, RedisQueueDepths

log = structlog.get_logger(__name__)


def is_batch_queue(name: str) -> bool:
    """Whether a queue takes screening batches (screen.cpu, screen.gpuN; not screen.sync)."""
    return name.startswith(SCREEN_QUEUE_PREFIX) and name != SYNC_QUEUE


class QueueRouter:
    """Worker heartbeats per queue in Redis, and the choice of queue for each batch."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys = Keys(),
        heartbeat_s: float = 5.0,
        batches_per_worker: int = 2,
        broker: QueueDepths | None = None,
    ) -> None:
        self.client = client
        self.broker = broker or RedisQueueDepths(client)
        self.keys = keys
        self.ttl_s = heartbeat_s * 3
        self.batches_per_worker = batches_per_worker

    def heartbeat(self, worker: str, queues: Sequence[str], now: float | None = None) -> None:
        """Say that `worker` is alive and consumes `queues`."""
        stamp = time.time() if now is None else now
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.sadd(self.keys.worker_queues, queue)
            pipe.zadd(self.keys.workers(queue), {worker: stamp})
            pipe.zremrangebyscore(self.keys.workers(queue), "-inf", stamp - self.ttl_s * 10)
        pipe.execute()

    def forget(self, worker: str, queues: Sequence[str]) -> None:
        """Say that `worker` has stopped."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zrem(self.keys.workers(queue), worker)
        pipe.execute()

    def live_workers(self, now: float | None = None) -> dict[str, int]:
        """Live workers per batch queue (heartbeat within three intervals)."""
        stamp = time.time() if now is None else now
        queues = sorted(q.decode() for q in self.client.smembers(self.keys.worker_queues))  # type: ignore[union-attr]
        queues = [q for q in queues if is_batch_queue(q)]
        if not queues:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcount(self.keys.workers(queue), stamp - self.ttl_s, "+inf")
        counts = pipe.execute()
        return {q: int(n) for q, n in zip(queues, counts, strict=True) if int(n) > 0}

    def waiting(self, queues: Sequence[str]) -> dict[str, int]:
        """Batches waiting in each queue of the broker."""
        return self.broker.waiting(queues)

    def pick(self, now: float | None = None) -> tuple[str, bool] | None:
        """The queue for the next batch, and whether a batch already waits there for each of
        its workers; None when no live queue has room for one."""
        live = self.live_workers(now)
        if not live:
            return None
        waiting = self.waiting(list(live))
        open_queues = [q for q in live if waiting[q] < self.batches_per_worker * live[q]]
        if not open_queues:
            return None
        queue = min(open_queues, key=lambda q: (waiting[q] / live[q], q))
        return queue, waiting[queue] >= live[queue]

    def choose(self, now: float | None = None) -> str | None:
        """The queue for the next batch, or None when no live queue has room for one."""
        picked = self.pick(now)
        return None if picked is None else picked[0]


class Heartbeat:
    """A daemon thread that keeps a worker's heartbeat fresh until stopped."""

    def __init__(
        self, router: QueueRouter, worker: str, queues: Sequence[str], every_s: float
    ) -> None:
        self.router = router
        self.worker = worker
        self.queues = [q for q in queues if is_batch_queue(q)]
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat now and then every interval."""
        if self.queues:
            self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove this worker from its queues."""
        self._stop.set()
        if self.queues:
            try:
                self.router.forget(self.worker, self.queues)
            except redis.RedisError as exc:
                log.warning("heartbeat_forget_failed", worker=self.worker, error=str(exc))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.router.heartbeat(self.worker, self.queues)
            except redis.RedisError as exc:  # Redis away: keep trying, the worker still works
                log.warning("heartbeat_failed", worker=self.worker, error=str(exc))
            self._stop.wait(self.every_s)
