"""The embedded PostgreSQL: made once, reused, and never outliving the process that started it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.pipeline import wait_until
from devtools.postgres_server import PostgresServer
from tests.factories import ROOT

# A stand-in for `make run`: starts the server, says its pid, and waits to be killed.
_SUPERVISOR = """
import sys, time
from pathlib import Path
from devtools.postgres_server import PostgresServer
server = PostgresServer(Path(sys.argv[1]), durable=False)
created = server.initialise()
server.start()
print(server.process.pid, created, flush=True)
time.sleep(600)
"""


@pytest.fixture()
def cluster_dir() -> Iterator[Path]:
    """A directory for a cluster of the test's own (readable by the postgres user)."""
    path = Path(tempfile.mkdtemp(prefix="screening-pg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_supervisor(cluster: Path) -> tuple[subprocess.Popen[str], int, str]:
    """Run the stand-in in a process group of its own; its postmaster pid and 'created'."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR, str(cluster)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    pid, created = process.stdout.readline().split()
    return process, int(pid), created


def test_the_server_stops_when_its_starters_whole_process_group_is_killed(
    cluster_dir: Path,
) -> None:
    process, postmaster, created = _start_supervisor(cluster_dir)
    assert created == "True" and _alive(postmaster)
    os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up
    process.wait(timeout=10)
    wait_until(lambda: not _alive(postmaster), 30, "postgres to follow its parent")
    # A second start reuses the cluster and its data.
    process, postmaster, created = _start_supervisor(cluster_dir)
    try:
        assert created == "False" and _alive(postmaster)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        wait_until(lambda: not _alive(postmaster), 30, "postgres to stop")


def test_stop_shuts_the_server_down_and_start_serves_the_same_data(cluster_dir: Path) -> None:
    server = PostgresServer(cluster_dir, durable=False)
    server.start()
    server.create_database("kept")
    server.stop()
    started = time.monotonic()
    server = PostgresServer(cluster_dir, port=server.port, durable=False)
    server.start()
    try:
        assert time.monotonic() - started < 30
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=kept"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
