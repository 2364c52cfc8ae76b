"""The local system's programs as `make run` builds them (nothing is started here)."""

from __future__ import annotations

from devtools.stack import build_stack


def test_a_local_rabbitmq_starts_before_the_workers_and_is_every_programs_broker() -> None:
    environ = {"DATABASE_URL": "postgresql://archive.example/screening", "GPU_QUEUES": "0"}
    stack = build_stack(environ, redis_port=16390, rabbitmq_port=16392)
    names = [program.name for program in stack.programs]
    assert names.index("epmd") < names.index("rabbitmq") < names.index("beat")
    assert names.index("beat") < names.index("cpu worker")
    assert stack.rabbitmq is not None
    assert stack.env["CELERY_BROKER_URL"] == stack.rabbitmq.url == stack.settings.celery_broker_url
    assert stack.rabbitmq.url.startswith("amqp://") and ":16392/" in stack.rabbitmq.url


def test_a_broker_url_of_the_callers_wins_over_a_local_rabbitmq() -> None:
    environ = {
        "DATABASE_URL": "postgresql://archive.example/screening",
        "CELERY_BROKER_URL": "amqp://broker.example//",
        "GPU_QUEUES": "0",
    }
    stack = build_stack(environ, redis_port=16390, rabbitmq_port=16392)
    assert stack.rabbitmq is None and "rabbitmq" not in [p.name for p in stack.programs]
    assert stack.settings.celery_broker_url == "amqp://broker.example//"


def test_a_local_cluster_starts_before_the_workers_and_holds_every_programs_streams() -> None:
    environ = {"DATABASE_URL": "postgresql://archive.example/screening", "GPU_QUEUES": "0"}
    stack = build_stack(environ, redis_port=16390, rabbitmq_port=16392, cluster_port=16395)
    names = [program.name for program in stack.programs]
    assert names.index("redis-cluster-2") < names.index("web") < names.index("beat")
    assert stack.cluster is not None and [n.port for n in stack.cluster.nodes] == [
        16395,
        16396,
        16397,
    ]
    assert stack.settings.redis_cluster_nodes == [
        "127.0.0.1:16395",
        "127.0.0.1:16396",
        "127.0.0.1:16397",
    ]
    assert stack.settings.celery_broker_url == stack.env["CELERY_BROKER_URL"]
    assert stack.settings.celery_broker_url.startswith("amqp://")


def test_cluster_nodes_of_the_callers_win_over_a_local_cluster() -> None:
    environ = {
        "DATABASE_URL": "postgresql://archive.example/screening",
        "REDIS_CLUSTER_NODES": "redis-0.example:6379,redis-1.example:6379",
        "GPU_QUEUES": "0",
    }
    stack = build_stack(environ, redis_port=16390, rabbitmq_port=16392, cluster_port=16395)
    assert stack.cluster is None
    assert not any(p.name.startswith("redis-cluster") for p in stack.programs)
    assert stack.settings.redis_cluster_nodes == ["redis-0.example:6379", "redis-1.example:6379"]
