"""Prometheus instruments of the Celery workers: screening, and the batcher that feeds it.

A worker host runs several processes (Celery's prefork children, one or more per GPU), so the
instruments use prometheus_client's multiprocess mode: the launcher (tasks.worker) points
`PROMETHEUS_MULTIPROC_DIR` at an empty directory of the worker's own, every process writes its
values there, and the main process serves their sum on WORKER_METRICS_PORT (tasks.metrics.exporter).

Every label takes values from a known set: queues from celeryconfig (anything else is
"other"), stages from the engine, categories and routes from the contract, rule ids from the
rules file the worker loaded, GPUs from the index it is pinned to.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from celeryconfig import queue_names
from core.models import Decision

STAGES = ("normalize", "rules", "embed", "search", "score")
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# From ingestion to a decision: sub-second when keeping up, minutes to hours in an incident.
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
OTHER = "other"


class ScreeningMetrics:
    """What a screening worker process records about each batch it screens."""

    def __init__(self, gpu_queues: int, registry: CollectorRegistry | None = None) -> None:
        self.queues = frozenset(queue_names(gpu_queues))
        self.stage_seconds = Histogram(
            "screening_stage_seconds",
            "Time one batch spent in each stage of the engine.",
            ["queue", "stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "screening_batch_size_events",
            "Events per screened batch.",
            ["queue"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "screening_events_total",
            "Events screened (stream batches and synchronous screens).",
            ["queue"],
            registry=registry,
        )
        self.decisions = Counter(
            "screening_decisions_total",
            "Decisions written to the high or low stream (once per event), by category and route.",
            ["category", "route"],
            registry=registry,
        )
        self.cache = Counter(
            "screening_embedding_cache_lookups_total",
            "Embedding-cache lookups by result (hit or miss).",
            ["result"],
            registry=registry,
        )
        self.rules = Counter(
            "screening_rules_fired_total",
            "Rules that fired on screened events, by rule id.",
            ["rule"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "screening_queue_wait_seconds",
            "Time from an event's acceptance to the start of its screening.",
            ["queue"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.end_to_end = Histogram(
            "screening_end_to_end_seconds",
            "Time from an event's acceptance to its decision being written, by route.",
            ["route"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "screening_failures_total",
            "Events that could not be screened and stay pending for the reclaimer, by reason.",
            ["queue", "reason"],
            registry=registry,
        )
        self.model_info = Gauge(
            "screening_model_info",
            "1 for the embedding model and policy version (rules, thresholds, reference set) a "
            "live worker process screens with.",
            ["model", "policy_version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.gpu_memory = Gauge(
            "screening_gpu_memory_bytes",
            "GPU memory held by the worker processes pinned to a GPU, allocated or reserved.",
            ["gpu", "kind"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._model: tuple[str, str] | None = None

    def queue(self, name: str | None) -> str:
        """The queue label of a task's delivery queue."""
        return name if name in self.queues else OTHER

    def cache_lookup(self, hits: int, misses: int) -> None:
        """Count one embedding-cache lookup (the engine calls this)."""
        if hits:
            self.cache.labels("hit").inc(hits)
        if misses:
            self.cache.labels("miss").inc(misses)

    def waited(self, queue: str, ingested_ms: Iterable[int], now_ms: int) -> None:
        """Observe how long each event waited between acceptance and screening."""
        histogram = self.queue_wait.labels(queue)
        for at in ingested_ms:
            if at:
                histogram.observe(max(0.0, (now_ms - at) / 1000))

    def screened(
        self, queue: str, stage_seconds: dict[str, float], decisions: Sequence[Decision]
    ) -> None:
        """Record a screened batch: its stages, its size, the rules that fired, the model."""
        if not decisions:
            return
        for stage in STAGES:
            self.stage_seconds.labels(queue, stage).observe(stage_seconds.get(stage, 0.0))
        self.batch_size.labels(queue).observe(len(decisions))
        self.events.labels(queue).inc(len(decisions))
        for decision in decisions:
            for flag in decision.flags:
                self.rules.labels(flag.id).inc()
        self._set_model(decisions[0].model, decisions[0].version)

    def decided(
        self, decisions: Sequence[Decision], ingested_ms: Sequence[int], now_ms: int
    ) -> None:
        """Record decisions this process wrote (not redeliveries another had finished)."""
        for decision, at in zip(decisions, ingested_ms, strict=True):
            self.decisions.labels(decision.category.value, decision.route).inc()
            if at:
                self.end_to_end.labels(decision.route).observe(max(0.0, (now_ms - at) / 1000))

    def failed(self, queue: str, reason: str, count: int = 1) -> None:
        """Count events left pending after failing (reason: unreadable or error)."""
        self.failures.labels(queue, reason).inc(count)

    def gpu(self, index: str | None) -> None:
        """Record this process's GPU memory, when it runs on one (torch already loaded)."""
        torch = sys.modules.get("torch")
        if index is None or torch is None or not torch.cuda.is_available():
            return
        self.gpu_memory.labels(index, "allocated").set(torch.cuda.memory_allocated())
        self.gpu_memory.labels(index, "reserved").set(torch.cuda.memory_reserved())

    def _set_model(self, model: str, version: str) -> None:
        """Point the info metric at the model and policy version now in use."""
        if self._model == (model, version):
            return
        if self._model is not None:
            self.model_info.labels(*self._model).set(0)
        self.model_info.labels(model, version).set(1)
        self._model = (model, version)


class BatcherMetrics:
    """What the batcher, reclaimer and archiver record on the pipeline worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.dispatched = Counter(
            "pipeline_dispatched_events_total",
            "Events put in screening batches, by queue and source: new or reclaimed (sent by "
            "the batcher), topped_up (read by the worker into a batch it was sent).",
            ["queue_name", "source"],
            registry=registry,
        )
        self.held_back = Counter(
            "pipeline_drain_waits_total",
            "Times the batcher found no live screening queue with room and left events in the "
            "stream.",
            registry=registry,
        )
        self.archived = Counter(
            "pipeline_archived_rows_total",
            "Decisions and dead letters committed to the archive, by outcome (high, low, dlq).",
            ["outcome"],
            registry=registry,
        )
