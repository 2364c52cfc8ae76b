"""Fixtures shared by every test package: a real Redis, a real Redis Cluster, a real PostgreSQL
and a real RabbitMQ on free ports, and recorded spans."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from kombu.connection import Connection
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine

from celeryconfig import queue_names
from core.archive import open_archive
from core.archive.schema import migrate
from devtools.postgres_server import PostgresServer
from devtools.rabbitmq_server import RabbitServer
from devtools.redis_cluster import RedisCluster
from devtools.redis_server import RedisServer

# The shared builders assert too (assert_each_decided_once, Pipeline.post): rewritten like test
# modules' asserts, so a failure shows its values.
pytest.register_assert_rewrite("tests.factories")

# The tests' processes record every span in memory, as a process configured with an exporter
# would (a provider is installed once per process, so once for the whole session).
_SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_SPANS))
trace.set_tracer_provider(_provider)


@pytest.fixture()
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this test's in-process code finishes (emptied before the test)."""
    _SPANS.clear()
    yield _SPANS
    _SPANS.clear()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session; tests get it flushed."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One 3-master Redis Cluster for the whole session, started by the first test needing it."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def cluster_nodes(redis_cluster: RedisCluster) -> str:
    """REDIS_CLUSTER_NODES of the session's cluster, every master emptied before the test."""
    redis_cluster.flush()
    return redis_cluster.addresses


@pytest.fixture()
def replicated_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A Redis Cluster of the test's own, which it may break: 3 masters with a replica each,
    failing over within about two seconds."""
    cluster = RedisCluster(tmp_path / "cluster", masters=3, replicas=1, node_timeout_ms=1000)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitServer]:
    """One RabbitMQ node for the whole session, started by the first test that needs it."""
    server = RabbitServer(tmp_path_factory.mktemp("rabbitmq"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def rabbitmq_url(rabbitmq_server: RabbitServer) -> Iterator[str]:
    """URL of the session's RabbitMQ; the test's queues (those of two GPUs) are deleted after."""
    yield rabbitmq_server.url
    with Connection(rabbitmq_server.url) as connection:
        for name in queue_names(2):
            connection.default_channel.queue_delete(name)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session exports the embedding model to ONNX (once, shared by every test)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def pipeline_var(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """One var/ directory for the session, so the small reference index is built only once."""
    # Imported here, after the assert rewrite of tests.factories is registered below.
    from tests.factories import write_small_reference

    var = tmp_path_factory.mktemp("pipeline-var")
    write_small_reference(var / "reference.csv")
    (var / "models").symlink_to(model_dir, target_is_directory=True)
    return var


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the session's Redis, emptied before the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied before the test."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop, kill and restart."""
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session, migrated to the latest schema; tests get it emptied.

    Its cluster lives in a directory of its own under the system's temp directory: PostgreSQL
    runs as the `postgres` user when the tests run as root, and pytest's own temp directories
    are private to the user running the tests.
    """
    data = Path(tempfile.mkdtemp(prefix="screening-pg-"))
    server = PostgresServer(data, durable=False)
    server.start()
    migrate(server.url)
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture()
def stack_dir() -> Iterator[Path]:
    """A directory for a whole stack's files (its VAR_DIR), embedded PostgreSQL included.

    Like the session's PostgreSQL, it lives under the system's temp directory rather than
    pytest's: run as root, the stack's PostgreSQL runs as the `postgres` user, which cannot
    enter pytest's private temp directories.
    """
    path = Path(tempfile.mkdtemp(prefix="screening-stack-"))
    path.chmod(0o711)  # enterable (not listable) by the postgres user, for var/postgres
    yield path
    shutil.rmtree(path, ignore_errors=True)


def empty_archive(server: PostgresServer) -> None:
    """Remove every archived decision and review."""
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=screening"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions, reviews RESTART IDENTITY")


@pytest.fixture()
def database_url(postgres_server: PostgresServer) -> str:
    """URL of the session's archive database, emptied before the test."""
    empty_archive(postgres_server)
    return postgres_server.url


@pytest.fixture()
def archive(database_url: str) -> Iterator[Engine]:
    """An engine on the emptied archive database."""
    engine = open_archive(database_url)
    yield engine
    engine.dispose()
