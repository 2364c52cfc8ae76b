"""The web process's collaborators, each created on first use and kept for the process."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import redis

import core.archive
from core.admission import BacklogMonitor, KeyRing, RateLimiter
from core.keys import Keys
from core.settings import Settings
from core.stream import EventStream, LabelStream, ScreeningStream, connect
from core.stream.combining import IngestCombiner
from core.stream.connection import Client, connect_streams
from core.stream.shards import ShardedEventStream, ShardedScreening, ShardLayout
from core.telemetry import StreamSpans, records_nothing

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy import Engine


class Services:
    """Holds the Redis client and what is built on it, created lazily once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key_ring = KeyRing.from_entries(settings.effective_api_keys)
        self.keys = Keys.from_settings(settings)

    @cached_property
    def client(self) -> redis.Redis:
        """The Redis client; it connects on first command and reconnects after an outage."""
        return connect(self.settings.redis_url, self.settings.redis_timeout_s)

    @cached_property
    def stream_client(self) -> Client:
        """The client of the streams: the Redis Cluster of REDIS_CLUSTER_NODES, or `client`."""
        if not self.settings.redis_cluster_nodes:
            return self.client
        return connect_streams(self.settings, self.settings.redis_timeout_s)

    @cached_property
    def sync_redis(self) -> redis.Redis:
        """A client for waiting on synchronous screening answers (blocking reads need a longer
        socket timeout than the front door's)."""
        return connect(self.settings.redis_url, self.settings.screen_sync_timeout_s + 5)

    @cached_property
    def stream(self) -> EventStream | ShardedEventStream:
        """The ingest stream with its dedup records (every shard's, on a Redis Cluster)."""
        window = self.settings.dedup_window_s
        if self.settings.redis_cluster_nodes:
            layout = ShardLayout.from_settings(self.settings)
            return ShardedEventStream(self.stream_client, layout, window)
        return EventStream(self.client, self.keys, window)

    @cached_property
    def intake(self) -> IngestCombiner:
        """The stream's `ingest` for this worker's concurrent requests, combined into shared
        script calls (core.stream.combining)."""
        return IngestCombiner(self.stream)

    @cached_property
    def spans(self) -> StreamSpans:
        """Spans of the hop from this process onto the ingest stream."""
        return StreamSpans(
            self.keys.ingest_stream, self.keys.group, recording=not records_nothing()
        )

    @cached_property
    def backlog(self) -> BacklogMonitor:
        """The cached backlog reading (in all and per tenant) behind 503s and /readyz."""
        s = self.settings
        return BacklogMonitor(
            self.stream.backlog_by_tenant,
            limit=s.backlog_max,
            high_water=s.backlog_high_water,
            refresh_s=s.backlog_refresh_s,
            tenants=len(self.key_ring.tenants),
        )

    @cached_property
    def celery(self) -> Celery:
        """A Celery client that sends synchronous screening tasks by name (no task code).

        Celery, kombu and their tracing are imported here, on the first synchronous screen, and
        not at start-up: a web worker that only ingests never needs them (about 9 MB of RSS).
        """
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        from tasks import create_celery

        # The task's trace continues on the worker that answers.
        CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
        return create_celery(self.settings, include_tasks=False)

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """The per-tenant token bucket, or None when rate limiting is off."""
        s = self.settings
        if s.rate_limit_per_s <= 0:
            return None
        return RateLimiter(self.stream_client, s.rate_limit_per_s, s.rate_limit_burst, self.keys)

    @cached_property
    def consumer(self) -> ScreeningStream | ShardedScreening:
        """The consumer side of the stream, for users' live history counters."""
        if self.settings.redis_cluster_nodes:
            layout = ShardLayout.from_settings(self.settings)
            return ShardedScreening(self.stream_client, layout, self.settings)
        return ScreeningStream.from_settings(self.client, self.settings)

    @cached_property
    def archive(self) -> Engine | None:
        """The archive database (None when DATABASE_URL is unset); connects on first use."""
        url = self.settings.database_url
        return core.archive.open_archive(url) if url else None

    @cached_property
    def labels(self) -> LabelStream:
        """Where reviews are published for the screening workers."""
        return LabelStream(self.stream_client, self.keys)
