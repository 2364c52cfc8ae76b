"""What a worker process holds: settings, Redis clients, the stream, the router, the engine, the
archive and the reviews it learns from.

Everything is created on first use in the process that uses it (a prefork child, not the
parent), so nothing heavy happens at import or fork time and no connection crosses a fork.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property

import redis
from sqlalchemy import Engine

from celeryconfig import is_amqp
from core.archive import DecisionWriter, open_archive
from core.keys import Keys
from core.screening import ScreeningEngine, load_engine
from core.screening.embedding import resolve_device
from core.settings import Settings
from core.stream import ArchiveFeed, LabelStream, ScreeningStream, connect
from core.stream.connection import Client, connect_streams
from core.stream.shards import ShardedScreening, ShardLayout
from core.telemetry import StreamSpans
from tasks.broker import AmqpQueueDepths, QueueDepths, RedisQueueDepths
from tasks.learning import LiveExamples
from tasks.metrics import BatcherMetrics, ScreeningMetrics
from tasks.routing import QueueRouter


class Runtime:
    """Per-process collaborators of the tasks, each built lazily once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def keys(self) -> Keys:
        """The deployment's Redis names."""
        return Keys.from_settings(self.settings)

    @cached_property
    def client(self) -> redis.Redis:
        """Client of the Redis holding the streams (workers wait longer than the front door)."""
        return connect(self.settings.redis_url, max(self.settings.redis_timeout_s, 5.0))

    @cached_property
    def stream_client(self) -> Client:
        """Client of what holds the streams: the Redis Cluster of REDIS_CLUSTER_NODES, or the
        Redis of REDIS_URL (which keeps the caches, heartbeats and synchronous replies)."""
        if not self.settings.redis_cluster_nodes:
            return self.client
        return connect_streams(self.settings, max(self.settings.redis_timeout_s, 5.0))

    @cached_property
    def layout(self) -> ShardLayout:
        """How the streams are sharded (one untagged shard on one Redis)."""
        return ShardLayout.from_settings(self.settings)

    @cached_property
    def screening(self) -> ShardedScreening:
        """The consumer side of every shard of the ingest stream."""
        return ShardedScreening(self.stream_client, self.layout, self.settings)

    @cached_property
    def broker(self) -> QueueDepths:
        """The broker's queue depths: on the streams' Redis unless CELERY_BROKER_URL is set."""
        url = self.settings.celery_broker_url
        timeout = max(self.settings.redis_timeout_s, 5.0)
        if url is None:
            return RedisQueueDepths(self.client)
        return (
            AmqpQueueDepths(url, timeout)
            if is_amqp(url)
            else RedisQueueDepths(connect(url, timeout))
        )

    @cached_property
    def stream(self) -> ScreeningStream:
        """The consumer side of the ingest stream (its first shard on a Redis Cluster)."""
        return self.screening.shard(0)

    @cached_property
    def router(self) -> QueueRouter:
        """Heartbeats and the choice of queue."""
        s = self.settings
        return QueueRouter(
            self.client, self.keys, s.worker_heartbeat_s, s.queue_batches_per_worker, self.broker
        )

    @cached_property
    def engine(self) -> ScreeningEngine:
        """The screening engine, loaded on the first batch this process screens."""
        cap_search_threads(self.settings)
        return load_engine(self.settings, self.client, self.metrics.cache_lookup)

    @cached_property
    def metrics(self) -> ScreeningMetrics:
        """This process's screening instruments."""
        return ScreeningMetrics(self.settings.gpu_queues)

    @cached_property
    def batcher_metrics(self) -> BatcherMetrics:
        """This process's batcher instruments."""
        return BatcherMetrics()

    @cached_property
    def spans(self) -> StreamSpans:
        """Spans of the stream hop on the consumer side."""
        return StreamSpans(self.keys.ingest_stream, self.keys.group)

    @cached_property
    def archive(self) -> Engine | None:
        """The archive database, or None when DATABASE_URL is not set."""
        url = self.settings.database_url
        return open_archive(url, pool_size=2) if url else None

    @cached_property
    def archive_writer(self) -> DecisionWriter | None:
        """Batched upserts into the archive (None without one)."""
        return DecisionWriter(self.archive) if self.archive is not None else None

    @cached_property
    def archive_feed(self) -> ArchiveFeed:
        """The archiver's consumer group on the decision streams (of the first shard)."""
        return self.archive_feeds[0]

    @cached_property
    def archive_feeds(self) -> list[ArchiveFeed]:
        """The archiver's consumer group on each shard's decision streams."""
        return [ArchiveFeed(self.stream_client, keys) for keys in self.layout.all_keys()]

    @cached_property
    def live_examples(self) -> LiveExamples:
        """Reviews applied to this process's engine."""
        labels = LabelStream(self.stream_client, self.keys)
        return LiveExamples(labels, self.archive, self.settings.review_propagation_s)

    @cached_property
    def consumer_name(self) -> str:
        """This process's name in the consumer group."""
        return f"{socket.gethostname()}:{os.getpid()}"


def cap_search_threads(settings: Settings) -> None:
    """Give the reference search (faiss, on OpenMP) SEARCH_THREADS threads in this process, or
    one where the encoder runs on the CPU; on a GPU host, unset, OpenMP keeps every core.

    A CPU worker's cores already run the ONNX batches and share the host with Redis and the web;
    faiss's OpenMP threads then wait on each other at every step of a search. Searching 71k
    vectors for 10 queries took 47 ms on one thread and 2,196 ms on two, for 100 queries 109 ms
    and 1,796 ms (medians of 7, every core of the host busy with other work).
    """
    threads = settings.search_threads
    if threads is None and not resolve_device(settings.embed_device).startswith("cuda"):
        threads = 1
    if threads is not None:
        import faiss  # only screening processes search; the pipeline worker never imports it

        faiss.omp_set_num_threads(threads)


_current: Runtime | None = None


def runtime() -> Runtime:
    """The runtime of this process, created from the environment on first use."""
    global _current  # noqa: PLW0603 - one runtime per process, created lazily
    if _current is None or _current.consumer_name != f"{socket.gethostname()}:{os.getpid()}":
        _current = Runtime(Settings())
    return _current
