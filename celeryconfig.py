"""Celery configuration derived from the project settings: queues, routes, acks, beat schedule.

Queues: one per GPU (screen.gpu0 ... screen.gpuN-1), screen.cpu for CPU workers, screen.sync for
the synchronous screen API, and pipeline for the batcher's, reclaimer's and archiver's ticks.

The broker is the Redis of REDIS_URL unless CELERY_BROKER_URL names another: a Redis, or a
RabbitMQ (amqp://), where every queue is a quorum queue (replicated, durable) and each publish
waits for the broker's confirm, so a task the batcher has sent survives a broker node's loss.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from core.settings import Settings

CPU_QUEUE = "screen.cpu"
SYNC_QUEUE = "screen.sync"
PIPELINE_QUEUE = "pipeline"
SCREEN_QUEUE_PREFIX = "screen."
BROKER_TRANSPORT = "tasks.broker:Transport"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
QUORUM = {"x-queue-type": "quorum"}
EXCHANGE = Exchange("screening", type="topic")


def is_amqp(url: str) -> bool:
    """Whether a broker URL names a RabbitMQ (AMQP) broker rather than a Redis."""
    return url.partition("://")[0] in AMQP_SCHEMES


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


def _queue(name: str, rabbitmq: bool) -> Queue:
    """One queue: on RabbitMQ a quorum queue bound by its name to the topic exchange."""
    if not rabbitmq:
        return Queue(name)
    # Celery binds quorum queues to its native delayed-delivery exchanges, which forward
    # through topic exchanges only; the routing key is the queue's name, so routing is exact.
    return Queue(name, EXCHANGE, routing_key=name, queue_arguments=QUORUM)


def _redis(settings: Settings, broker: str) -> dict[str, Any]:
    """Broker settings of a Redis broker."""
    plain = broker.partition("://")[0] in ("redis", "rediss")
    return {
        # kombu's Redis transport with a fix for workers dying on a Redis restart (tasks.broker).
        **({"broker_transport": BROKER_TRANSPORT} if plain else {}),
        "broker_transport_options": {"visibility_timeout": settings.task_visibility_timeout_s},
    }


def _rabbitmq() -> dict[str, Any]:
    """Broker settings of a RabbitMQ broker: quorum queues, publisher confirms."""
    return {
        # Without confirms a publish is fire-and-forget, and a task sent while a node fails
        # is lost (celery#9149); with them, apply_async returns once the broker holds it.
        "broker_transport_options": {"confirm_publish": True},
        # Every queue is declared quorum in task_queues; this covers any queue Celery
        # creates by name, so all declarations of a queue agree (RabbitMQ refuses others).
        "task_default_queue_type": "quorum",
        "task_create_missing_queue_type": "quorum",
        # Quorum queues have no global QoS: the worker sets the prefetch per consumer.
        "worker_detect_quorum_queues": True,
    }


def from_settings(settings: Settings) -> dict[str, Any]:
    """Celery settings for this deployment."""
    names = queue_names(settings.gpu_queues)
    tick = settings.drain_interval_s
    broker = settings.celery_broker_url or settings.redis_url
    return {
        "broker_url": broker,
        **(_rabbitmq() if is_amqp(broker) else _redis(settings, broker)),
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_queues": [_queue(name, is_amqp(broker)) for name in names],
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
