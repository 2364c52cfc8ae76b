"""The Redis broker transport, with kombu 5.7's channel close made safe on a lost connection.

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

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty


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
