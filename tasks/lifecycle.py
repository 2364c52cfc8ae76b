"""Worker lifecycle hooks: JSON logging, tracing, the metrics endpoint, the queue heartbeat, and
on RabbitMQ the queues declared before the worker consumes.

Tracing starts in the process that runs tasks, after any fork: each prefork child on
`worker_process_init`, or the main process itself for the threads pool of the pipeline
worker. The metrics endpoint and the heartbeat belong to the main process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import amqp.exceptions
import kombu.exceptions
import structlog
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from prometheus_client.registry import Collector

from celeryconfig import PIPELINE_QUEUE, is_amqp
from core.logs import configure_logging
from core.telemetry import configure_tracing
from tasks.broker import declare_queues
from tasks.metrics import ArchiveLagCollector, forget_process, serve
from tasks.metrics.pipeline import PipelineCollector
from tasks.routing import Heartbeat
from tasks.runtime import runtime

log = structlog.get_logger(__name__)
_heartbeat: Heartbeat | None = None


@setup_logging.connect
def _logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Use the project's JSON logs instead of Celery's own formatting."""
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
    configure_logging(level or runtime().settings.log_level)
    # One line per task received and finished, every beat tick, says nothing the tasks' own
    # structured lines ("drained", "batch_screened") do not say better.
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _start_tracing(redis_spans: bool) -> None:
    """Install the tracer provider and the Celery (and Redis) instrumentation here."""
    configure_tracing("screening-worker", os.environ)
    CeleryInstrumentor().instrument()
    if redis_spans:
        # Screening's own Redis calls (cache, claims, failures); not the pipeline worker's,
        # whose stream reads block in a loop and would bury its traces.
        RedisInstrumentor().instrument()


@worker_process_init.connect
def _trace_child(**_: Any) -> None:
    """A prefork child starts tracing after its fork."""
    _start_tracing(redis_spans=True)


@worker_init.connect
def _trace_main(sender: Any = None, **_: Any) -> None:
    """A worker whose pool runs tasks in this process (threads, solo) starts tracing here."""
    pool = getattr(sender, "pool_cls", None)
    if pool is not None and "prefork" not in getattr(pool, "__module__", ""):
        _start_tracing(redis_spans=False)


@worker_init.connect
def _declare_queues(sender: Any = None, **_: Any) -> None:
    """On RabbitMQ, declare every queue before the consumer binds them (see tasks.broker)."""
    app = getattr(sender, "app", None)
    if app is None or not is_amqp(app.conf.broker_url):
        return
    try:
        declare_queues(app)
    except (OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError) as exc:
        # The consumer connects (and declares what it consumes) with its own retries.
        log.warning("queue_declaration_failed", error=str(exc)[:300])


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    """Serve the host's metrics and announce this worker on the screening queues it consumes."""
    global _heartbeat  # noqa: PLW0603 - one heartbeat per worker process
    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    name = sender.hostname if sender is not None else "worker"
    current = runtime()
    settings = current.settings
    if settings.worker_metrics_port:
        collectors: list[Collector] = []
        if PIPELINE_QUEUE in queues:
            collectors.append(PipelineCollector(current))
            if settings.database_url:
                collectors.append(ArchiveLagCollector(*current.archive_feeds))
        try:
            serve(settings.worker_metrics_port, settings.worker_metrics_host, collectors)
        except OSError as exc:  # the worker still works; its metrics are missing, and say so
            log.error("metrics_not_served", port=settings.worker_metrics_port, error=str(exc))
    _heartbeat = Heartbeat(current.router, name, queues, settings.worker_heartbeat_s)
    _heartbeat.start()
    log.info("worker_ready", worker=name, queues=queues, batch_queues=_heartbeat.queues)


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_: Any) -> None:
    """An exiting child takes its live gauges out of the host's metrics."""
    forget_process(pid or os.getpid())


@worker_shutting_down.connect
def _stop_heartbeat(**_: Any) -> None:
    """Stop sending batches here as soon as shutdown starts."""
    if _heartbeat is not None:
        _heartbeat.stop()
