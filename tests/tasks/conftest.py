"""Fixtures of the pipeline tests: real Celery worker processes on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tasks.runtime
from tasks.app import app as celery_app
from tests.factories import Pipeline, StandInEngine


def flavour_overrides(request: pytest.FixtureRequest, flavour: str) -> dict[str, str]:
    """Settings of a test pipeline's flavour: "redis" (everything on the session's Redis),
    "rabbitmq" (the session's RabbitMQ as the broker) or "cluster" (the streams sharded on the
    session's Redis Cluster, the broker the RabbitMQ)."""
    overrides = {}
    if flavour in ("rabbitmq", "cluster"):
        overrides["celery_broker_url"] = request.getfixturevalue("rabbitmq_url")
    if flavour == "cluster":
        overrides["redis_cluster_nodes"] = request.getfixturevalue("cluster_nodes")
    return overrides


@pytest.fixture()
def flavour(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of the flavour a test is parametrized with (indirect), for a pipeline the
    test builds itself; "redis" unless parametrized."""
    return flavour_overrides(request, getattr(request, "param", "redis"))


@pytest.fixture()
def pipeline(
    request: pytest.FixtureRequest, redis_url: str, pipeline_var: Path, tmp_path: Path
) -> Iterator[Pipeline]:
    """A pipeline on the session's emptied Redis; start its processes in the test.

    Its Celery broker is that Redis, or the session's RabbitMQ for a test parametrized with
    `@pytest.mark.parametrize("pipeline", ["rabbitmq"], indirect=True)`; with "cluster" the
    streams are sharded on the session's Redis Cluster and the broker is the RabbitMQ.
    """
    overrides = flavour_overrides(request, getattr(request, "param", "redis"))
    stack = Pipeline(redis_url, pipeline_var, tmp_path / "logs", **overrides)
    yield stack
    stack.processes.stop_all()


@pytest.fixture()
def worker_side(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tasks.runtime.Runtime]:
    """This process as a screening worker on the test's Redis with a stand-in engine, tasks run
    inline (Celery eager)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr(tasks.runtime, "_current", None)
    current = tasks.runtime.runtime()
    current.__dict__["engine"] = StandInEngine()
    celery_app.conf.task_always_eager = True
    try:
        yield current
    finally:
        celery_app.conf.task_always_eager = False
