"""The web process's collaborators, each created on first use and kept for the process."""

from __future__ import annotations

from functools import cached_property

import redis
from celery import Celery

from core.apikeys import KeyRing
from core.backpressure import BacklogMonitor
from core.consumer import ScreeningStream
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.streams import EventStream
from tasks import create_celery


class Services:
    """Holds the Redis client and what is built on it, created lazily once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings.effective_api_keys)

    @cached_property
    def client(self) -> redis.Redis:
        """The Redis client; it connects on first command and reconnects after an outage."""
        timeout = self.settings.redis_timeout_s
        return redis.Redis.from_url(
            self.settings.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )

    @cached_property
    def sync_redis(self) -> redis.Redis:
        """A client for waiting on synchronous screening answers (blocking reads need a longer
        socket timeout than the front door's)."""
        timeout = self.settings.screen_sync_timeout_s + 5
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    @cached_property
    def stream(self) -> EventStream:
        """The ingest stream with its dedup records."""
        s = self.settings
        return EventStream(self.client, s.ingest_stream, s.key_prefix, s.dedup_window_s)

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
    def consumer(self) -> ScreeningStream:
        """The consumer side of the stream, for the outcome ledger."""
        return ScreeningStream.from_settings(self.client, self.settings)

    @cached_property
    def celery(self) -> Celery:
        """A Celery client that sends synchronous screening tasks by name (no task code)."""
        return create_celery(self.settings, include_tasks=False)

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """The per-key token bucket, or None when rate limiting is off."""
        s = self.settings
        if s.rate_limit_per_s <= 0:
            return None
        return RateLimiter(self.client, s.rate_limit_per_s, s.rate_limit_burst, s.key_prefix)
