"""What reaches the broker (and so Flower's task view): stream ids and tokens, never the text
users wrote."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from devtools.pipeline import wait_until
from tasks.routing import Heartbeat, QueueRouter
from tests.factories import AUTH, Pipeline, event_body

pytestmark = pytest.mark.slow

SECRET = "my card number is 4111 1111 1111 1111"


def messages(pipeline: Pipeline, queue: str) -> list[tuple[bytes, list[Any]]]:
    """The raw broker messages waiting in a queue, each with its decoded task arguments."""
    found = []
    for raw in pipeline.redis.lrange(queue, 0, -1):  # type: ignore[union-attr]
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((raw, args))
    return found


def test_screening_batches_reach_the_broker_as_stream_ids_only(pipeline: Pipeline) -> None:
    # A live CPU queue with no worker consuming it: the batcher's batches stay there to be read.
    router = QueueRouter(pipeline.redis, heartbeat_s=1)
    heartbeat = Heartbeat(router, "absent@test", ["screen.cpu"], every_s=0.5)
    heartbeat.start()
    try:
        pipeline.processes.start_beat()
        pipeline.processes.start_worker("pipeline", ["--pipeline"])
        sent = [event_body(content=f"{SECRET} #{i}") for i in range(10)]
        pipeline.post(sent)
        wait_until(lambda: pipeline.redis.llen("screen.cpu") > 0, 60, "a batch\n" + pipeline.logs())
    finally:
        heartbeat.stop()
    stream_ids = {i.decode() for i, _ in pipeline.redis.xrange("events:ingest")}
    [(raw, [ids])] = messages(pipeline, "screen.cpu")
    assert set(ids) == stream_ids
    assert b"4111" not in raw and b"user-1" not in raw


def test_synchronous_screening_sends_a_token_and_keeps_the_texts_out_of_the_broker(
    redis_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(redis_url, pipeline_var, tmp_path / "logs", screen_sync_timeout_s=1)
    response = stack.client.post("/v1/screen", json={"texts": [SECRET]}, headers=AUTH)
    assert response.status_code == 504  # no worker: the task waits in the broker
    [(raw, [token])] = messages(stack, "screen.sync")
    assert b"4111" not in raw
    assert len(token) == 32 and all(c in "0123456789abcdef" for c in token)
    wait_until(lambda: not stack.redis.exists(f"events:sync-request:{token}"), 10, "expiry")
