"""The pipeline collector's readings when the Celery broker is not the streams' Redis."""

from __future__ import annotations

from core.settings import Settings
from devtools.redis_server import free_port
from tasks.metrics.pipeline import PipelineCollector
from tasks.runtime import Runtime


def test_an_unreachable_rabbitmq_drops_the_queue_lengths_and_keeps_what_redis_holds(
    redis_url: str,
) -> None:
    away = f"amqp://guest:guest@127.0.0.1:{free_port()}//"  # nothing listens there
    collector = PipelineCollector(Runtime(Settings(redis_url=redis_url, celery_broker_url=away)))
    families = {family.name: family for family in collector.collect()}
    assert [s.value for s in families["pipeline_redis_up"].samples] == [1.0]
    assert families["celery_queue_length"].samples == []
    assert families["pipeline_events"].samples  # the ledger is read all the same
