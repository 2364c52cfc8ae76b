"""`scripts/migrate.py`, the one-shot the deployments run before the pipeline starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from core.archive.schema import differences
from devtools.postgres_server import PostgresServer
from tests.factories import ROOT


def run_migrate(**env: str) -> subprocess.CompletedProcess[str]:
    """Run the script as the images do, with only the given archive settings."""
    clean = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "scripts/migrate.py"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_script_migrates_an_empty_database_to_the_models_and_is_idempotent(
    postgres_server: PostgresServer,
) -> None:
    name = f"oneshot_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    first = run_migrate(DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert differences(url) == []
    again = run_migrate(DATABASE_URL=url)
    assert again.returncode == 0, again.stderr


def test_the_script_fails_clearly_without_a_database() -> None:
    result = run_migrate()
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr
    unreachable = run_migrate(DATABASE_URL="postgresql://postgres@127.0.0.1:1/screening")
    assert unreachable.returncode == 2
    assert "cannot migrate the archive" in unreachable.stderr
