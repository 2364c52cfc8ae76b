"""The web process's collaborators, each created on first use and kept for the process."""

from __future__ import annotations

from functools import cached_property

import redis

from core.apikeys import KeyRing
from core.backpressure import BacklogMonitor
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.streams import EventStream


class Services:
    """Holds the Redis client and what is built on it, created lazily once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings.effective_api_keys)

    @cached_property
    def redis(self) -> redis.Redis:
        """The Redis client; it connects on first command and reconnects after an outage."""
        timeout = self.settings.redis_timeout_s
        return redis.Redis.from_url(
            self.settings.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )

    @cached_property
    def stream(self) -> EventStream:
        """The ingest stream with its dedup records."""
        s = self.settings
        return EventStream(self.redis, s.ingest_stream, s.key_prefix, s.dedup_window_s)

    @cached_property
    def backlog(self) -> BacklogMonitor:
        """The cached backlog reading behind 503s and /readyz."""
        s = self.settings
        return BacklogMonitor(
            lambda: self.stream.backlog(s.consumer_group),
            limit=s.backlog_max,
            high_water=s.backlog_high_water,
            refresh_s=s.backlog_refresh_s,
        )

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """The per-key token bucket, or None when rate limiting is off."""
        s = self.settings
        if s.rate_limit_per_s <= 0:
            return None
        return RateLimiter(self.redis, s.rate_limit_per_s, s.rate_limit_burst, s.key_prefix)
