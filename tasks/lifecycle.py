"""Worker lifecycle hooks: JSON logging, and the heartbeat that makes a worker's queues live."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from celery.signals import setup_logging, worker_ready, worker_shutting_down

from core.logs import configure_logging
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


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    """Announce this worker on the screening queues it consumes."""
    global _heartbeat  # noqa: PLW0603 - one heartbeat per worker process
    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    name = sender.hostname if sender is not None else "worker"
    current = runtime()
    _heartbeat = Heartbeat(current.router, name, queues, current.settings.worker_heartbeat_s)
    _heartbeat.start()
    log.info("worker_ready", worker=name, queues=queues, batch_queues=_heartbeat.queues)


@worker_shutting_down.connect
def _stop_heartbeat(**_: Any) -> None:
    """Stop sending batches here as soon as shutdown starts."""
    if _heartbeat is not None:
        _heartbeat.stop()
