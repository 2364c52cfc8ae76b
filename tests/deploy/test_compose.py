"""docker-compose.yml and the Dockerfile: the whole stack, resolved by docker-compose itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings
from devtools.web_server import gunicorn_argv
from tasks.flower import flower_argv
from tasks.worker import beat_argv, worker_launcher_argv
from tests.factories import ROOT, module_form

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SECRETS = {
    "FLOWER_BASIC_AUTH": "ops:s3cret-for-tests",
    "GRAFANA_ADMIN_PASSWORD": "grafana-for-tests",
    "POSTGRES_PASSWORD": "postgres-for-tests",
}
SERVICES = {
    "redis", "redis-cluster-0", "redis-cluster-1", "redis-cluster-2", "redis-cluster-create",
    "rabbitmq", "postgres", "web", "beat", "pipeline", "worker", "worker-gpu", "flower",
    "prometheus", "grafana", "jaeger", "locust", "migrate",
}  # fmt: skip
APP_SERVICES = {"web", "beat", "pipeline", "worker", "worker-gpu", "flower"}


def compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's docker-compose (v1, needs no engine for `config`) on the stack."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make test` (apt-get install it)")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**clean, **env},
    )


@cache
def resolved() -> dict[str, Any]:
    """The stack as docker-compose resolves it, with every profile on."""
    profiles = ("--profile", "gpu", "--profile", "load", "--profile", "rabbitmq")
    profiles += ("--profile", "cluster")
    result = compose(*profiles, "config", **SECRETS)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_docker_compose_config_accepts_the_stack_and_every_profile() -> None:
    assert compose("config", "--quiet", **SECRETS).returncode == 0
    assert set(resolved()["services"]) == SERVICES


def test_the_file_has_no_obsolete_version_key() -> None:
    assert "version" not in yaml.safe_load(COMPOSE.read_text())


def test_every_service_has_a_restart_policy() -> None:
    for name, service in resolved()["services"].items():
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_the_stack_refuses_to_start_without_its_passwords() -> None:
    for missing in SECRETS:
        others = {k: v for k, v in SECRETS.items() if k != missing}
        result = compose("config", "--quiet", **others)
        assert result.returncode != 0 and missing in result.stderr, missing


def test_flower_reads_its_login_from_the_environment_never_the_command_line() -> None:
    flower = resolved()["services"]["flower"]
    assert not any("basic-auth" in part for part in flower["command"])
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == SECRETS["FLOWER_BASIC_AUTH"]
    assert "admin:admin" not in COMPOSE.read_text()


def mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(source, target) of a resolved service's volumes (docker-compose v1 writes strings)."""
    found = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.add((volume.get("source", ""), volume["target"]))
        else:
            source, target, *_ = volume.split(":")
            found.add((source, target))
    return found


def test_stores_keep_their_data_in_volumes_and_report_health() -> None:
    document = resolved()
    services = document["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    for name, path in (
        ("redis", "/data"),
        ("postgres", "/var/lib/postgresql/data"),
        ("rabbitmq", "/var/lib/rabbitmq"),
    ):
        [(source, _)] = [m for m in mounts(services[name]) if m[1] == path]
        assert source in document["volumes"], name  # a named volume, not the container's layer
        assert services[name]["healthcheck"]["test"], name


def test_app_processes_reach_redis_postgres_and_the_trace_collector() -> None:
    services = resolved()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
    for name in ("web", "beat", "pipeline", "worker", "worker-gpu"):
        needs = services[name]["depends_on"]
        assert needs["redis"]["condition"] == "service_healthy", name
        assert needs["postgres"]["condition"] == "service_healthy", name


def test_celery_uses_the_redis_unless_the_rabbitmq_profile_and_its_broker_url_are_given() -> None:
    services = resolved()["services"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
    url = "amqp://screening:rabbit-for-tests@rabbitmq:5672/"
    result = compose(
        "--profile", "rabbitmq", "config",
        **SECRETS, CELERY_BROKER_URL=url, RABBITMQ_PASSWORD="rabbit-for-tests",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    switched = yaml.safe_load(result.stdout)["services"]
    for name in APP_SERVICES:
        assert switched[name]["environment"]["CELERY_BROKER_URL"] == url, name
    rabbitmq = switched["rabbitmq"]
    assert rabbitmq["environment"] == {
        "RABBITMQ_DEFAULT_USER": "screening",
        "RABBITMQ_DEFAULT_PASS": "rabbit-for-tests",
    }
    assert rabbitmq["hostname"] == "rabbitmq"  # its data are kept under the node's name
    assert not rabbitmq.get("ports")  # reached by the app on the compose network only


def test_the_streams_stay_on_the_redis_unless_the_cluster_profile_and_its_nodes_are_given() -> None:
    services = resolved()["services"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["REDIS_CLUSTER_NODES"] == "", name
    assert Settings(redis_cluster_nodes="").redis_cluster_nodes == []  # type: ignore[arg-type]
    nodes = "redis-cluster-0:6379,redis-cluster-1:6379,redis-cluster-2:6379"
    result = compose(
        "--profile", "cluster", "--profile", "rabbitmq", "config",
        **SECRETS, REDIS_CLUSTER_NODES=nodes, RABBITMQ_PASSWORD="rabbit-for-tests",
        CELERY_BROKER_URL="amqp://screening:rabbit-for-tests@rabbitmq:5672/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    switched = yaml.safe_load(result.stdout)
    for name in APP_SERVICES:
        env = switched["services"][name]["environment"]
        settings = Settings(redis_cluster_nodes=env["REDIS_CLUSTER_NODES"])  # type: ignore[arg-type]
        assert settings.redis_cluster_nodes == nodes.split(","), name
        assert env["INGEST_SHARDS"] == "8" and env["REDIS_URL"] == "redis://redis:6379/0", name
    for index in range(3):
        node = switched["services"][f"redis-cluster-{index}"]
        assert node["hostname"] == f"redis-cluster-{index}"
        script = node["command"][-1]
        assert "--cluster-enabled yes" in script and "--appendonly yes" in script
        [(source, _)] = [m for m in mounts(node) if m[1] == "/data"]
        assert source in switched["volumes"] and source == f"redis-cluster-{index}"
        assert node["healthcheck"]["test"] and not node.get("ports")
    create = switched["services"]["redis-cluster-create"]
    assert "--cluster create" in create["command"][-1] and create["restart"] == "on-failure"
    assert set(create["depends_on"]) == {f"redis-cluster-{i}" for i in range(3)}


def test_the_archive_schema_is_migrated_once_before_any_app_process_starts() -> None:
    services = resolved()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "scripts/migrate.py"]
    assert migrate["restart"] == "on-failure"  # retried until it succeeds, then stays done
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name


def test_the_gpu_worker_and_locust_run_only_in_their_profiles() -> None:
    services = resolved()["services"]
    profiled = {name: s["profiles"] for name, s in services.items() if s.get("profiles")}
    cluster = {name: ["cluster"] for name in SERVICES if name.startswith("redis-cluster")}
    assert profiled == {
        "worker-gpu": ["gpu"],
        "locust": ["load"],
        "rabbitmq": ["rabbitmq"],
        **cluster,
    }
    gpu = services["worker-gpu"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert gpu["command"][-2:] == ["--gpu", "0"]


def test_prometheus_and_grafana_are_provisioned_from_the_repository() -> None:
    services = resolved()["services"]
    assert (str(ROOT / "deploy" / "prometheus"), "/etc/prometheus") in mounts(
        services["prometheus"]
    )
    grafana = mounts(services["grafana"])
    shipped = ROOT / "deploy" / "grafana"
    assert (str(shipped / "provisioning"), "/etc/grafana/provisioning") in grafana
    assert (str(shipped / "dashboards"), "/var/lib/grafana/dashboards") in grafana


def _stages() -> dict[str, str]:
    """The Dockerfile's stages: name -> its instructions."""
    stages: dict[str, str] = {}
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"FROM \S+ AS (\S+)", line)
        if match:
            current = match.group(1)
            stages[current] = ""
        elif current:
            stages[current] += line + "\n"
    return stages


def test_the_dockerfile_builds_in_stages_and_ships_non_root_images_with_health_checks() -> None:
    stages = _stages()
    assert {"web", "worker"} <= set(stages) and len(stages) >= 4
    for target in ("web", "worker"):
        body = stages[target]
        users = re.findall(r"^USER (\S+)", body, re.M)
        assert users and users[-1] == "app", target
        assert "HEALTHCHECK" in body, target
        assert "COPY --from=build-" in body, target  # only the built environment is shipped


def test_each_app_service_runs_the_command_line_the_python_source_spells() -> None:
    services = resolved()["services"]
    commands = {name: module_form(services[name]["command"]) for name in APP_SERVICES - {"web"}}
    assert commands == {
        "beat": beat_argv("/app/var/celerybeat-schedule", python="python"),
        "flower": flower_argv(["--address=0.0.0.0", "--port=5555"], python="python"),
        "pipeline": worker_launcher_argv(["--pipeline"], python="python"),
        "worker": worker_launcher_argv(["--cpu"], python="python"),
        "worker-gpu": worker_launcher_argv(["--gpu", "0"], python="python"),
    }
    assert "command" not in services["web"]  # the web image's own, below


def test_each_image_runs_by_default_the_command_line_the_python_source_spells() -> None:
    stages = _stages()
    [web] = re.findall(r"^CMD (.+)$", stages["web"], re.M)
    [worker] = re.findall(r"^CMD (.+)$", stages["worker"], re.M)
    config = Path("deploy/gunicorn.conf.py")  # relative to the image's working directory
    assert module_form(json.loads(web)) == gunicorn_argv(config=config, python="python")
    assert module_form(json.loads(worker)) == worker_launcher_argv(["--cpu"], python="python")


def test_the_web_image_carries_no_torch() -> None:
    stages = _stages()
    web_chain = stages["base"] + stages["build-web"] + stages["web"]
    assert "torch" not in web_chain
    assert "torch" in stages["build-worker"]
