"""The Celery broker on a real RabbitMQ: quorum queues, confirmed publishes, queue depths; and
on Redis, the queues as before."""

from __future__ import annotations

import redis

from celeryconfig import CPU_QUEUE, SYNC_QUEUE, from_settings, queue_names
from core.settings import Settings
from devtools.rabbitmq_server import RabbitServer
from tasks import create_celery
from tasks.broker import AmqpQueueDepths, RedisQueueDepths


def test_on_rabbitmq_every_queue_celery_declares_is_a_quorum_queue(
    rabbitmq_server: RabbitServer, rabbitmq_url: str
) -> None:
    app = create_celery(Settings(celery_broker_url=rabbitmq_url, gpu_queues=2), False)
    # What a worker does on start-up for the queues it consumes, for every queue at once.
    with app.connection_for_write() as connection:
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).declare()
    types = rabbitmq_server.queue_types()
    assert {name: types.get(name) for name in queue_names(2)} == dict.fromkeys(
        queue_names(2), "quorum"
    )


def test_on_rabbitmq_a_sent_task_waits_in_its_queue_through_a_confirming_channel(
    rabbitmq_server: RabbitServer, rabbitmq_url: str
) -> None:
    app = create_celery(Settings(celery_broker_url=rabbitmq_url), False)
    depths = AmqpQueueDepths(rabbitmq_url, 5.0)
    try:
        assert depths.waiting([CPU_QUEUE, SYNC_QUEUE]) == {CPU_QUEUE: 0, SYNC_QUEUE: 0}
        app.send_task("tasks.screening.screen_batch", args=[["1-0"]], queue=CPU_QUEUE)
        assert depths.waiting([CPU_QUEUE, SYNC_QUEUE]) == {CPU_QUEUE: 1, SYNC_QUEUE: 0}
        # The producer's connection stays open in the process's pool (kombu's, shared by every
        # app of this broker URL, so left open), its channel in confirm mode: RabbitMQ
        # acknowledges each publish.
        modes = rabbitmq_server.ctl("list_channels", "confirm", "--no-table-headers").split()
        assert "true" in modes
    finally:
        depths.close()


def test_on_redis_queues_are_plain_lists_redelivered_after_the_visibility_timeout(
    redis_client: redis.Redis, redis_url: str
) -> None:
    config = from_settings(Settings(redis_url=redis_url, task_visibility_timeout_s=120))
    assert all(queue.queue_arguments is None for queue in config["task_queues"])
    assert config["broker_transport_options"] == {"visibility_timeout": 120}
    assert "task_default_queue_type" not in config
    redis_client.rpush(CPU_QUEUE, b"a task", b"another")
    assert RedisQueueDepths(redis_client).waiting([CPU_QUEUE, SYNC_QUEUE]) == {
        CPU_QUEUE: 2,
        SYNC_QUEUE: 0,
    }
