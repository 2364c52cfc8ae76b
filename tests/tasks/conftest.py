"""Fixtures of the pipeline tests: real Celery worker processes on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import Pipeline


@pytest.fixture()
def pipeline(redis_url: str, pipeline_var: Path, tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline on the session's emptied Redis; start its processes in the test."""
    stack = Pipeline(redis_url, pipeline_var, tmp_path / "logs")
    yield stack
    stack.processes.stop_all()
