"""Redis restarting under a running pipeline: nothing is lost, nothing decided twice, no worker
dies, and no false backlog is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.pipeline import wait_until
from devtools.redis_server import RedisServer
from tests.factories import Pipeline, assert_each_decided_once, mixed_events

pytestmark = pytest.mark.slow


def test_redis_restarts_under_a_running_pipeline_need_no_hand(
    own_redis: RedisServer, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(own_redis.url, pipeline_var, tmp_path / "logs")
    try:
        stack.start_workers()
        sent = 0
        for restart in range(3):
            stack.post(mixed_events(20, f"restart{restart}"))
            sent += 20
            wait_until(lambda n=sent: stack.settled(n), 120, "decisions\n" + stack.logs())
            own_redis.rewrite_aof()
            stack.post(mixed_events(10, f"late{restart}"))  # read by the batcher while Redis goes
            sent += 10
            own_redis.restart()
            wait_until(lambda n=sent: stack.settled(n), 120, "recovery\n" + stack.logs())
        assert_each_decided_once(stack, sent)
        dead = {
            n: p.returncode for n, p in stack.processes.processes.items() if p.poll() is not None
        }
        assert dead == {}, stack.logs()
        assert "Unrecoverable error" not in stack.logs()
        assert stack.client.get("/readyz").get_json()["backlog"] == 0
    finally:
        stack.processes.stop_all()
