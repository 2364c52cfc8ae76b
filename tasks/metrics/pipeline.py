"""The pipeline's state, read from Redis at each scrape of the pipeline worker's /metrics.

The ledger (accepted = high + low + dead-lettered + in flight), the ingest stream's backlog,
pending entries and the age of its oldest unprocessed entry, the dead-letter stream, and each
Celery queue's length under the name celery-exporter gives it (`celery_queue_length`, label
`queue_name`), so dashboards and alerts written for celery-exporter work unchanged. Reading at
scrape time rather than counting in process means every replica of the pipeline worker
reports the same truth and none of it is lost when a process restarts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from celeryconfig import queue_names
from core.errors import CoreError
from core.stream import Ledger, StreamStatus
from core.stream.shards import read_sharded_status
from tasks.broker import BrokerUnavailable
from tasks.routing import is_batch_queue
from tasks.runtime import Runtime

log = structlog.get_logger(__name__)


class PipelineCollector(Collector):
    """Exports the ledger, the stream's status and the queues' lengths, read on each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queues = queue_names(runtime.settings.gpu_queues)

    def describe(self) -> Iterator[Metric]:
        """The families this collector exports (without reading Redis)."""
        return self._families(None, None, {}, {})

    def collect(self) -> Iterator[Metric]:
        """Read Redis once and export what it says; `pipeline_redis_up` 0 when it cannot."""
        current = self.runtime
        try:
            ledger = current.screening.ledger()
            status = read_sharded_status(current.stream_client, current.layout)
            live = current.router.live_workers()
            waiting = self._waiting()
        except (CoreError, redis.RedisError) as exc:
            log.warning("pipeline_metrics_unavailable", error=str(exc)[:300])
            yield GaugeMetricFamily(
                "pipeline_redis_up", "1 when the pipeline's Redis answered this scrape.", 0.0
            )
            return
        yield from self._families(ledger, status, waiting, live)

    def _waiting(self) -> dict[str, int]:
        """The queues' lengths; none when a broker other than Redis is away (what Redis
        holds is still exported, and `pipeline_redis_up` stays about Redis)."""
        try:
            return self.runtime.router.waiting(self.queues)
        except BrokerUnavailable as exc:
            log.warning("pipeline_broker_unavailable", error=str(exc)[:300])
            return {}

    def _families(
        self,
        ledger: Ledger | None,
        status: StreamStatus | None,
        waiting: dict[str, int],
        live: dict[str, int],
    ) -> Iterator[Metric]:
        """Build the metric families from what was read (no samples when nothing was)."""
        yield GaugeMetricFamily(
            "pipeline_redis_up",
            "1 when the pipeline's Redis answered this scrape.",
            1.0 if ledger is not None else None,
        )
        outcomes = CounterMetricFamily(
            "pipeline_events",
            "Events by outcome: accepted; decided high or low; dead-lettered and replayed from "
            "the dead-letter stream (each ever).",
            labels=["outcome"],
        )
        if ledger is not None:
            for outcome, value in (
                ("accepted", ledger.accepted),
                ("high", ledger.high),
                ("low", ledger.low),
                ("dead_lettered", ledger.dead_lettered + ledger.replayed),
                ("replayed", ledger.replayed),
            ):
                outcomes.add_metric([outcome], value)
        yield outcomes
        yield _gauge(
            "pipeline_in_flight_events",
            "Accepted events not yet decided or dead-lettered.",
            None if ledger is None else ledger.in_flight,
        )
        yield _gauge(
            "pipeline_ledger_balanced",
            "1 when accepted = high + low + dead-lettered + in flight.",
            None if ledger is None else float(ledger.balanced),
        )
        yield _gauge(
            "pipeline_backlog_events",
            "Entries of the ingest stream not yet processed: unread plus pending.",
            None if status is None else status.unprocessed,
        )
        yield _gauge(
            "pipeline_pending_events",
            "Entries read by the consumer group and not yet acknowledged.",
            None if status is None else status.pending,
        )
        yield _gauge(
            "pipeline_oldest_unprocessed_age_seconds",
            "How long the oldest unprocessed entry of the ingest stream has waited (0 if none).",
            None if status is None else status.oldest_age_s(int(time.time() * 1000)),
        )
        yield _gauge(
            "pipeline_dead_letter_events",
            "Events in the dead-letter stream now.",
            None if status is None else status.dead_letters,
        )
        decisions = GaugeMetricFamily(
            "pipeline_decision_stream_entries",
            "Entries in the high- and low-risk streams now (kept to DECISION_STREAM_MAXLEN once "
            "every consumer group has read them).",
            labels=["stream"],
        )
        if status is not None:
            decisions.add_metric(["high"], status.high)
            decisions.add_metric(["low"], status.low)
        yield decisions
        yield _gauge(
            "pipeline_redis_memory_used_bytes",
            "Memory the pipeline's Redis uses (INFO memory used_memory).",
            None if status is None else status.memory_used,
        )
        yield _gauge(
            "pipeline_redis_memory_max_bytes",
            "The pipeline's Redis memory ceiling (maxmemory); 0 when it has none.",
            None if status is None else status.memory_max,
        )
        lengths = GaugeMetricFamily(
            "celery_queue_length",
            "Tasks waiting in each Celery queue (a Redis list's length, a RabbitMQ queue's "
            "ready messages), as celery-exporter names it.",
            labels=["queue_name"],
        )
        for queue, length in waiting.items():
            lengths.add_metric([queue], length)
        yield lengths
        workers = GaugeMetricFamily(
            "pipeline_live_workers",
            "Screening workers whose heartbeat on a batch queue is fresh.",
            labels=["queue_name"],
        )
        if ledger is not None:
            for queue in filter(is_batch_queue, self.queues):
                workers.add_metric([queue], live.get(queue, 0))
        yield workers


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    """A gauge family with one sample, or none when the value is unknown."""
    return GaugeMetricFamily(name, documentation, value)
