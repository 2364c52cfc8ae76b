"""Celery configuration derived from the project settings: queues, routes, acks, beat schedule.

Queues: one per GPU (screen.gpu0 ... screen.gpuN-1), screen.cpu for CPU workers, screen.sync for
the synchronous screen API, and pipeline for the batcher's, reclaimer's and archiver's ticks.
"""

from __future__ import annotations

from typing import Any

from kombu import Queue

from core.settings import Settings

CPU_QUEUE = "screen.cpu"
SYNC_QUEUE = "screen.sync"
PIPELINE_QUEUE = "pipeline"
SCREEN_QUEUE_PREFIX = "screen."
BROKER_TRANSPORT = "tasks.broker:Transport"


def gpu_queue(index: int) -> str:
    """The queue of the worker pinned to GPU `index`."""
    return f"{SCREEN_QUEUE_PREFIX}gpu{index}"


def queue_names(gpu_queues: int) -> list[str]:
    """Every queue of a deployment with `gpu_queues` GPU queues."""
    return [CPU_QUEUE, SYNC_QUEUE, PIPELINE_QUEUE, *map(gpu_queue, range(gpu_queues))]


def _archive_schedule(settings: Settings) -> dict[str, Any]:
    """The archiver's ticks, when there is an archive (DATABASE_URL) to keep."""
    if not settings.database_url:
        return {}
    tick = settings.archive_interval_s
    return {
        "archive-decisions": {
            "task": "tasks.archiver.archive",
            "schedule": tick,
            "options": {"expires": tick * 2},
        },
        "archive-retention": {
            "task": "tasks.archiver.retain",
            "schedule": 3600.0,
            "options": {"expires": 1800},
        },
    }


def from_settings(settings: Settings) -> dict[str, Any]:
    """Celery settings for this deployment."""
    names = queue_names(settings.gpu_queues)
    tick = settings.drain_interval_s
    broker = settings.celery_broker_url or settings.redis_url
    scheme = broker.partition("://")[0]
    return {
        "broker_url": broker,
        # kombu's Redis transport with a fix for workers dying on a Redis restart (tasks.broker).
        **({"broker_transport": BROKER_TRANSPORT} if scheme in ("redis", "rediss") else {}),
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_queues": [Queue(name) for name in names],
        "task_default_queue": CPU_QUEUE,
        "task_routes": {
            "tasks.batcher.drain": {"queue": PIPELINE_QUEUE},
            "tasks.batcher.reclaim": {"queue": PIPELINE_QUEUE},
            "tasks.archiver.archive": {"queue": PIPELINE_QUEUE},
            "tasks.archiver.retain": {"queue": PIPELINE_QUEUE},
            "tasks.screening.screen_sync": {"queue": SYNC_QUEUE},
        },
        # A task is acknowledged when it has finished, and given back when its worker dies:
        # the stream's own pending list is the second safety net (see core.consumer).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # On a lost broker connection, running batches finish (their decisions need only the
        # streams' Redis, and what they cannot write stays pending for the reclaimer) rather
        # than being killed halfway; saying so also silences Celery's deprecation warning.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": settings.task_visibility_timeout_s},
        "broker_connection_retry_on_startup": True,
        # No task returns a result anyone reads: the synchronous screen task answers through a
        # Redis list its request waits on, so there is no result backend to run.
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "beat_schedule": _archive_schedule(settings)
        | {
            "drain-ingest-stream": {
                "task": "tasks.batcher.drain",
                "schedule": tick,
                "options": {"expires": tick * 2},
            },
            "reclaim-pending-entries": {
                "task": "tasks.batcher.reclaim",
                "schedule": settings.reclaim_interval_s,
                "options": {"expires": settings.reclaim_interval_s * 2},
            },
        },
    }
