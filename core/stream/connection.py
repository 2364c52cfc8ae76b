"""The one place Redis clients are built, with the timeouts each use needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis
from redis.cluster import ClusterNode, RedisCluster

if TYPE_CHECKING:
    from core.settings import Settings

# What the stream layer runs on: one Redis, or a Redis Cluster (REDIS_CLUSTER_NODES).
Client = redis.Redis | RedisCluster


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


def connect_cluster(
    nodes: Sequence[str],
    timeout_s: float,
    *,
    password: str | None = None,
    health_check_interval: int = 30,
) -> RedisCluster:
    """A client of the Redis Cluster reachable at any of `nodes` (host:port each).

    It learns the slot map from the first node that answers, follows MOVED and ASK redirects,
    and reloads the map after a failover; timeouts are those of `connect`, `password` the
    nodes' AUTH.
    """
    startup = []
    for node in nodes:
        host, _, port = node.rpartition(":")
        startup.append(ClusterNode(host, int(port)))  # type: ignore[no-untyped-call]
    return RedisCluster(
        startup_nodes=startup,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=health_check_interval,
    )


def connect_streams(settings: Settings, timeout_s: float) -> redis.Redis | RedisCluster:
    """A client of what holds the streams: the Redis Cluster of REDIS_CLUSTER_NODES, else the
    Redis of REDIS_URL."""
    nodes = settings.redis_cluster_nodes
    if nodes:
        return connect_cluster(nodes, timeout_s, password=settings.redis_cluster_password)
    return connect(settings.redis_url, timeout_s)
