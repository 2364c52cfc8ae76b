"""`make run` as a supervisor: processes that die come back, Flower's login stays off the
command line, and nothing outlives the stack when its parent or the supervisor is killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from core.keys import Keys
from core.stream.connection import connect_cluster
from core.stream.shards import ShardLayout
from devtools.pipeline import wait_until
from devtools.redis_cluster import free_node_port
from devtools.redis_server import free_port
from devtools.supervisor import child_pids
from tests.factories import ROOT, alive, event_body, http_status

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`."""
    found: set[int] = set()
    todo = child_pids(pid)
    while todo:
        child = todo.pop()
        found.add(child)
        todo += child_pids(child)
    return found


def command_line(pid: int) -> str:
    """A process's command line, as `ps` shows it."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


class Stack:
    """`python -m scripts.local_stack --exit-with-parent` under a parent shell of its own."""

    def __init__(self, tmp_path: Path, var: Path, *options: str, **extra: str) -> None:
        self.web, self.flower = free_port(), free_port()
        env = {
            **os.environ,
            "VAR_DIR": str(var),
            "LOCAL_REDIS_PORT": str(free_port()),
            "WEB_PORT": str(self.web),
            "FLOWER_PORT": str(self.flower),
            "LOCAL_METRICS_PORT": "0",
            "API_KEYS": "acme:stack-key",
            "FLOWER_BASIC_AUTH": "ops:s3cret-flower",
            **extra,
        }
        env.pop("REDIS_URL", None)
        self.log = tmp_path / "stack.log"
        flags = " ".join(["--exit-with-parent", *options])
        script = f"{sys.executable} -m scripts.local_stack {flags} > {self.log} 2>&1"
        self.parent = subprocess.Popen(["sh", "-c", f"{script} & wait"], cwd=ROOT, env=env)
        wait_until(lambda: len(child_pids(self.parent.pid)) == 1, 10, "the supervisor")
        [self.supervisor] = child_pids(self.parent.pid)
        wait_until(self.up, 120, "the stack to come up\n" + self.output())

    def up(self) -> bool:
        """Whether the web app is ready and Flower answers with its login."""
        web = http_status(f"http://127.0.0.1:{self.web}/readyz") == 200
        return web and http_status(f"http://127.0.0.1:{self.flower}/", "ops:s3cret-flower") == 200

    def output(self) -> str:
        """What the supervisor has printed."""
        return self.log.read_text() if self.log.exists() else ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API request with the stack's key: its status and decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": "stack-key", "Content-Type": "application/json"}
        url = f"http://127.0.0.1:{self.web}{path}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def program(self, marker: str) -> int | None:
        """The pid of the supervised program whose command line holds `marker`, if it runs."""
        found = [p for p in child_pids(self.supervisor) if marker in command_line(p)]
        return found[0] if found else None


def test_a_killed_process_is_restarted_and_the_login_is_never_on_a_command_line(
    tmp_path: Path, stack_dir: Path
) -> None:
    stack = Stack(tmp_path, stack_dir)
    try:
        everything = descendants(stack.parent.pid)
        assert not any("s3cret" in command_line(pid) for pid in everything)
        assert "s3cret" not in stack.output()
        assert http_status(f"http://127.0.0.1:{stack.flower}/") == 401
        worker = stack.program("screen.cpu")
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        wait_until(
            lambda: "cpu worker exited with status -9; restarting in 1 s" in stack.output(),
            10,
            "the supervisor to notice\n" + stack.output(),
        )
        wait_until(
            lambda: stack.program("screen.cpu") not in (None, worker), 20, "a new CPU worker"
        )
        assert stack.up()
        stack.parent.kill()  # the parent (make) killed outright: the stack stops with it
        stack.parent.wait(timeout=10)
        wait_until(
            lambda: not any(map(alive, everything)), 60, "the stack to stop\n" + stack.output()
        )
        assert stack.output().splitlines()[-1] == "[make run] stopped"
    finally:
        for pid in descendants(stack.supervisor) | {stack.supervisor}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_supervisor_killed_outright_leaves_no_process_behind(
    tmp_path: Path, stack_dir: Path
) -> None:
    stack = Stack(tmp_path, stack_dir)
    everything = descendants(stack.supervisor)
    assert len(everything) >= 8  # redis, gunicorn and its workers, beat, workers, pool, Flower
    os.kill(stack.supervisor, signal.SIGKILL)
    wait_until(lambda: not any(map(alive, everything)), 60, "every process of the stack to stop")
    stack.parent.wait(timeout=10)


def test_make_run_cluster_screens_events_on_its_own_redis_cluster_and_rabbitmq(
    tmp_path: Path, stack_dir: Path, pipeline_var: Path
) -> None:
    cluster_port = free_node_port()
    stack = Stack(
        tmp_path,
        stack_dir,
        "--cluster",
        LOCAL_CLUSTER_PORT=str(cluster_port),
        LOCAL_RABBITMQ_PORT=str(free_port()),
        LOCAL_POSTGRES_PORT=str(free_port()),
        REFERENCE_PATH=str(pipeline_var / "reference.csv"),
        MODEL_DIR=str(pipeline_var / "models"),
        EMBED_DEVICE="cpu",
        INGEST_SHARDS="4",
    )
    try:
        assert "Redis Cluster of the streams: 3 masters" in stack.output()
        assert "Celery broker: RabbitMQ node" in stack.output()
        body = event_body(content="I am going to find you and kill you")
        assert stack.call("POST", "/v1/events", body)[0] == 202

        def screened() -> bool:
            status, found = stack.call("GET", f"/v1/events/discord/{body['event_id']}")
            return status == 200 and found["state"] == "screened"

        wait_until(screened, 180, "the decision\n" + stack.output())
        nodes = [f"127.0.0.1:{cluster_port + i}" for i in range(3)]
        cluster = connect_cluster(nodes, 5.0)
        layout = ShardLayout(Keys(), 4, clustered=True)
        shard = layout.keys(layout.shard_of("acme", "discord", body["event_id"]))
        assert cluster.xlen(shard.high_stream) == 1  # decided on the cluster, in its shard
        cluster.close()
    finally:
        stack.parent.kill()
        for pid in descendants(stack.supervisor) | {stack.supervisor}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
