"""The Celery broker seen from the tasks: how many tasks wait in each queue, on Redis (list
lengths) or RabbitMQ (passive declarations), and the Redis transport made safe on a lost
connection.

On Redis a queue is a list, and its length is what waits. On RabbitMQ a passive queue
declaration answers with the queue's ready messages (not those delivered and unacknowledged,
as on Redis), and a queue no worker has declared yet waits with nothing.

The Redis transport: kombu 5.7's channel close made safe on a lost connection.

When Redis goes away while a worker's channel waits in BRPOP and a late-acknowledged task is
running, kombu's `Channel.close()` first reads the BRPOP reply, which raises on the dead socket
before the channel is marked closed. Celery's reconnect then calls `Connection.collect()`,
which drops the transport's client, and closes the same channel once more: this time the
channel restores its unacknowledged task through a new Redis client built from that client,
now None (`AttributeError: 'NoneType' object has no attribute 'hostname'`), and the worker
stops with "Unrecoverable error". The channel here treats a dead BRPOP socket as nothing left
to read and closes in the first call, while the transport still has its client; the task it
gives back is restored by the broker's visibility timeout, and its stream entries are
reclaimed by the pipeline long before that.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import amqp.exceptions
import kombu.exceptions
import redis
from kombu.connection import Connection
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or did not answer in time."""


def declare_queues(app: Any) -> None:
    """Declare every queue of a RabbitMQ-brokered app on the broker now.

    A worker binds every queue of the app (not only those it consumes) to Celery's delayed-
    delivery exchanges as it starts; on a fresh broker, a queue no worker has declared yet
    would fail that binding. Declared first, they all exist (declaring is idempotent).
    """
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue(channel).declare()


class QueueDepths(Protocol):
    """Tasks waiting in the broker's queues."""

    def waiting(self, queues: Sequence[str]) -> dict[str, int]:
        """Tasks waiting in each of `queues`."""
        ...


class RedisQueueDepths:
    """Tasks waiting in a Redis broker: each queue's list length."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def waiting(self, queues: Sequence[str]) -> dict[str, int]:
        """Each queue's list length, read in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        return {q: int(n) for q, n in zip(queues, pipe.execute(), strict=True)}


class AmqpQueueDepths:
    """Tasks waiting in a RabbitMQ broker, read by passive declarations on one connection."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        # The batcher's ticks and the metrics scrape share the connection from their threads.
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._channel: Any = None

    def waiting(self, queues: Sequence[str]) -> dict[str, int]:
        """Ready messages in each queue (0 for one not declared yet)."""
        with self._lock:
            try:
                return {queue: self._ready(queue) for queue in queues}
            except (OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError) as exc:
                self._reset()
                raise BrokerUnavailable(f"cannot read the broker's queues: {exc}") from None

    def close(self) -> None:
        """Close the connection (the next reading opens another)."""
        with self._lock:
            self._reset()

    def _ready(self, queue: str) -> int:
        if self._channel is None:
            if self._connection is None:
                self._connection = Connection(self.url, connect_timeout=self.timeout_s)
            self._channel = self._connection.channel()
        try:
            _, ready, _ = self._channel.queue_declare(queue=queue, passive=True)
        except amqp.exceptions.NotFound:
            self._channel = None  # the broker closes a channel on a failed declaration
            return 0
        return int(ready)

    def _reset(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            # A dead connection has nothing left to close.
            with contextlib.suppress(OSError, amqp.exceptions.AMQPError):
                connection.release()


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, closing fully even when its BRPOP connection died with Redis."""

    def close(self) -> None:
        """Drop an unreadable BRPOP reply, then close as kombu does."""
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors:
                pass  # the socket died with the broker: there is no reply to read
        super().close()


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel
