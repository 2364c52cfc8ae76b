"""`make run`: start the whole system on this machine, in the foreground, and keep it running.

Starts a redis-server (append-only file on, data under var/redis) unless REDIS_URL is set, with
--cluster a 3-master Redis Cluster holding the streams (data under var/redis-cluster) unless
REDIS_CLUSTER_NODES is set, and a RabbitMQ node (Celery cannot use a cluster), with
--rabbitmq a RabbitMQ node as the Celery broker (data under var/rabbitmq) unless
CELERY_BROKER_URL is set, a PostgreSQL for the archive (data under var/postgres) unless
DATABASE_URL is set, migrates the archive, then starts the web app under gunicorn, Celery beat,
the pipeline worker (batcher, reclaimer and archiver), one screening worker per visible GPU (or
one CPU worker when there is none) and Flower. A process that exits is started again after a
backoff (1 s, doubling up to 30 s); only Ctrl-C or SIGTERM stops everything. With
--exit-with-parent (what `make run` passes), the death of the parent (make killed) stops
everything too; every process started here also gets a stop signal if this supervisor itself is
killed, so nothing lingers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from celeryconfig import is_amqp
from core.archive import ArchiveError
from core.archive.schema import migrate
from devtools.stack import ROOT, LocalStack, build_stack
from devtools.supervisor import Supervisor, die_with_parent

LOCAL_REDIS_PORT = int(os.environ.get("LOCAL_REDIS_PORT", "6390"))
LOCAL_POSTGRES_PORT = int(os.environ.get("LOCAL_POSTGRES_PORT", "6391"))
# The node also takes the next two ports (Erlang distribution and its port mapper).
LOCAL_RABBITMQ_PORT = int(os.environ.get("LOCAL_RABBITMQ_PORT", "6392"))
# The three masters of `make run CLUSTER=1` (each also takes its port + 10000, the cluster bus).
LOCAL_CLUSTER_PORT = int(os.environ.get("LOCAL_CLUSTER_PORT", "6395"))
# Worker hosts serve /metrics from here up: the pipeline worker, then each screening worker.
LOCAL_METRICS_PORT = int(os.environ.get("LOCAL_METRICS_PORT", "9101"))


def say(message: str) -> None:
    """Write one line for the person at the terminal."""
    sys.stdout.write(f"[make run] {message}\n")
    sys.stdout.flush()


def archive_ready(stack: LocalStack) -> bool:
    """Say where the archive is; migrate a database of DATABASE_URL now (the embedded one is
    migrated by its program once it answers). False when that fails."""
    if stack.postgres is not None:
        say(
            f"PostgreSQL for the archive on {stack.postgres.url} (data in "
            f"{stack.postgres.data_dir}; set DATABASE_URL to use another)"
        )
        return True
    say("using the archive database at DATABASE_URL")
    try:
        migrate(stack.env["DATABASE_URL"])
    except ArchiveError as exc:
        say(f"could not migrate the archive database: {exc}")
        return False
    return True


def say_stores(stack: LocalStack) -> None:
    """Say where the Redis and the Celery broker are (a broker's URL without credentials)."""
    settings = stack.settings
    if stack.redis is not None:
        say(f"redis-server on {stack.redis.url} (append-only file in {stack.redis.data_dir})")
    else:
        say(f"using the Redis at {settings.redis_url}")
    if stack.cluster is not None:
        say(
            f"Redis Cluster of the streams: 3 masters on {stack.cluster.addresses}, "
            f"{settings.ingest_shards} shards (data in {stack.cluster.nodes[0].data_dir.parent})"
        )
    elif settings.redis_cluster_nodes:
        say(f"streams on the Redis Cluster at {','.join(settings.redis_cluster_nodes)}")
    url = settings.celery_broker_url
    if stack.rabbitmq is not None:
        say(f"Celery broker: RabbitMQ node on 127.0.0.1:{stack.rabbitmq.port} (quorum queues)")
    elif url:
        kind = "RabbitMQ (quorum queues)" if is_amqp(url) else "Redis"
        say(f"Celery broker: {kind} at {url.partition('://')[2].rpartition('@')[2]}")


def main() -> int:
    """Start everything, print where it is, and supervise until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop everything when the parent dies"
    )
    parser.add_argument(
        "--rabbitmq", action="store_true", help="start a RabbitMQ node as the Celery broker"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="start a 3-master Redis Cluster for the streams, and RabbitMQ as the broker",
    )
    options = parser.parse_args()
    if options.exit_with_parent:
        die_with_parent(signal.SIGTERM)
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    try:
        stack = build_stack(
            os.environ,
            LOCAL_REDIS_PORT,
            LOCAL_METRICS_PORT,
            LOCAL_POSTGRES_PORT,
            LOCAL_RABBITMQ_PORT if options.rabbitmq or options.cluster else 0,
            cluster_port=LOCAL_CLUSTER_PORT if options.cluster else 0,
        )
    except RuntimeError as exc:  # PostgreSQL's programs missing, or its cluster not made
        say(f"could not start: {exc}")
        return 1
    settings = stack.settings
    say_stores(stack)
    if not archive_ready(stack):
        return 1
    supervisor = Supervisor(stack.programs, cwd=ROOT, env=stack.env, say=say)
    try:
        supervisor.start()
    except RuntimeError as exc:
        say(f"could not start: {exc}")
        supervisor.stop()
        return 1

    say(f"web app on http://{settings.web_host}:{settings.web_port}  (API docs: /openapi.json)")
    say(
        "metrics: /metrics on the web app; "
        + ", ".join(f"{name} on :{port}" for name, port in stack.metrics_ports.items())
    )
    workers = f"{stack.gpus} GPU worker(s)" if stack.gpus else "1 CPU worker"
    say(f"{workers}, beat and the pipeline worker")
    user, _, password = stack.flower_login.partition(":")
    if stack.flower_login_generated:
        say(
            f"Flower on http://127.0.0.1:{settings.flower_port}  user {user}, password "
            f"{password} (generated for this run; set FLOWER_BASIC_AUTH or "
            "FLOWER_BASIC_AUTH_FILE to choose one)"
        )
    else:
        say(f"Flower on http://127.0.0.1:{settings.flower_port}  (user {user})")
    if settings.using_dev_key:
        say("API key: dev-key  (development default; set API_KEYS=tenant:key,... to replace it)")
    else:
        say(f"API keys: {len(settings.api_keys)} configured through API_KEYS")
    say("a process that exits is restarted; Ctrl-C stops everything")

    supervisor.run(lambda: stopping)
    say("stopping")
    supervisor.stop()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
