"""The processes of a whole system on one machine, as programs for the supervisor.

Redis (append-only file on, unless REDIS_URL names another one), a 3-master Redis Cluster for
the streams when asked for one (its data under var/redis-cluster), a RabbitMQ node as the Celery
broker when asked for one (its data under var/rabbitmq; CELERY_BROKER_URL names another broker
otherwise, or the broker is that Redis), PostgreSQL for the archive
(its cluster under var/postgres, migrated once it answers, unless DATABASE_URL names another
database), the web app under gunicorn, Celery beat, the pipeline worker (batcher, reclaimer
and archiver), one screening worker per visible GPU (or a CPU worker when there is none) and
Flower. `make run` supervises them in the foreground;
`make chaos` supervises them while it breaks them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.archive.schema import migrate
from core.settings import Settings
from devtools.postgres_server import PostgresServer
from devtools.rabbitmq_server import RabbitServer
from devtools.redis_cluster import RedisCluster
from devtools.redis_server import RedisServer
from devtools.supervisor import Program
from devtools.web_server import gunicorn_argv
from tasks.flower import flower_launcher_argv, login
from tasks.worker import beat_argv, worker_launcher_argv

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalStack:
    """What to supervise, with the environment and settings every program shares."""

    programs: list[Program]
    env: dict[str, str]
    settings: Settings
    redis: RedisServer | None  # None when REDIS_URL names a Redis of someone else's
    rabbitmq: RabbitServer | None  # the local broker node, when one was asked for
    cluster: RedisCluster | None  # the local Redis Cluster of the streams, when asked for
    postgres: PostgresServer | None  # None when DATABASE_URL names a database elsewhere
    flower_login: str
    flower_login_generated: bool
    gpus: int
    metrics_ports: dict[str, int]  # where each worker serves /metrics (none when off)


def visible_gpus(environ: Mapping[str, str]) -> int:
    """How many GPUs nvidia-smi lists (0 without one), honouring CUDA_VISIBLE_DEVICES."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())


def settings_from(env: Mapping[str, str]) -> Settings:
    """The settings the programs will read from `env`."""
    fields = {name: env[name.upper()] for name in Settings.model_fields if name.upper() in env}
    return Settings(**fields)  # type: ignore[arg-type]


def build_stack(
    environ: Mapping[str, str],
    redis_port: int,
    metrics_port: int = 0,
    postgres_port: int = 0,
    rabbitmq_port: int = 0,
    *,
    cluster_port: int = 0,
) -> LocalStack:
    """The programs of a local system configured by `environ`; workers serve /metrics from
    `metrics_port` up (the pipeline worker, then each screening worker; 0 turns that off), an
    embedded PostgreSQL listens on `postgres_port` (0: a free port), and a RabbitMQ node on
    `rabbitmq_port` is the Celery broker (0: none; CELERY_BROKER_URL wins over it), and a
    3-master Redis Cluster on `cluster_port` and the two ports after it holds the streams (0:
    none; REDIS_CLUSTER_NODES wins over it)."""
    env = dict(environ)
    var = ROOT / settings_from(env).var_dir
    programs: list[Program] = []
    server = None
    if "REDIS_URL" not in env:
        server = RedisServer(
            var / "redis",
            port=redis_port,
            appendonly=True,
            appendfsync=env.get("REDIS_APPENDFSYNC", "everysec"),
        )
        server.data_dir.mkdir(parents=True, exist_ok=True)
        env["REDIS_URL"] = server.url
        programs.append(Program("redis-server", server.command(), ready=server.answers))
    cluster = None
    if cluster_port and not env.get("REDIS_CLUSTER_NODES"):
        cluster = RedisCluster(var / "redis-cluster", first_port=cluster_port, appendonly=True)
        env["REDIS_CLUSTER_NODES"] = cluster.addresses
        programs += cluster.programs()
    rabbitmq = None
    if rabbitmq_port and not env.get("CELERY_BROKER_URL"):
        rabbitmq = RabbitServer(var / "rabbitmq", port=rabbitmq_port)
        env["CELERY_BROKER_URL"] = rabbitmq.url
        programs += rabbitmq.programs()
    postgres = None
    if not env.get("DATABASE_URL"):
        postgres = PostgresServer(var / "postgres", port=postgres_port or None)
        env["DATABASE_URL"] = url = postgres.url
        programs.append(postgres.program(prepare=lambda: migrate(url)))
    gpus = visible_gpus(env)
    env.setdefault("GPU_QUEUES", str(gpus))
    settings = settings_from(env)
    # Resolved once, so a restarted Flower keeps the login printed at start-up.
    flower_login, generated = login(settings)
    env["FLOWER_BASIC_AUTH"] = flower_login
    metrics = var / "prometheus" / "web"
    metrics.mkdir(parents=True, exist_ok=True)
    roles = [("pipeline worker", ["--pipeline"])] + (
        [(f"gpu{i} worker", ["--gpu", str(i)]) for i in range(gpus)]
        if gpus
        else [("cpu worker", ["--cpu"])]
    )
    ports = {name: metrics_port + i if metrics_port else 0 for i, (name, _) in enumerate(roles)}
    workers = [Program(name, worker_launcher_argv(role, ports[name])) for name, role in roles]
    flower = ["--address=127.0.0.1", "--persistent=False", f"--port={settings.flower_port}"]
    programs += [
        Program("web", gunicorn_argv(), {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}),
        Program("beat", beat_argv(str(var / "celerybeat-schedule"), loglevel="WARNING")),
        *workers,
        Program("flower", flower_launcher_argv(flower)),
    ]
    metrics_ports = {name: port for name, port in ports.items() if port}
    return LocalStack(
        programs,
        env,
        settings,
        server,
        rabbitmq,
        cluster,
        postgres,
        flower_login,
        generated,
        gpus,
        metrics_ports,
    )
