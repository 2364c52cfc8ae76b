"""The one place Redis clients are built, with the timeouts each use needs."""

from __future__ import annotations

import redis


def connect(url: str, timeout_s: float, *, health_check_interval: int = 30) -> redis.Redis:
    """A client of the Redis at `url`: every call and connect gives up after `timeout_s`.

    The client connects on its first command and reconnects by itself after an outage; a
    connection idle for `health_check_interval` seconds is checked with PING before use, so a
    Redis restart costs a reconnect rather than a failed command.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=health_check_interval,
    )
