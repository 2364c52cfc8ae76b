"""Fixtures of the core tests: a small reference set and an engine on the real packaged model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import write_small_reference


@pytest.fixture(scope="session")
def small_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 480-row reference CSV drawn from the shipped set."""
    return write_small_reference(tmp_path_factory.mktemp("reference") / "reference.csv")
