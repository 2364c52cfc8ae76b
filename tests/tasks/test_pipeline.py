"""The pipeline with real Celery workers: decisions land once, faults lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from devtools.pipeline import wait_until
from devtools.redis_server import RedisServer
from devtools.web_server import GunicornServer
from tests.factories import (
    AUTH,
    HARMFUL,
    POISON,
    ROOT,
    SLOW,
    Pipeline,
    assert_each_decided_once,
    event_body,
    is_harmful,
    mixed_events,
)

pytestmark = pytest.mark.slow
# The claims that hold whichever broker carries the tasks, and whether the streams are on one
# Redis or sharded on a Redis Cluster (with RabbitMQ as the broker), run on every flavour.
FLAVOURS = pytest.mark.parametrize("pipeline", ["redis", "rabbitmq", "cluster"], indirect=True)


@FLAVOURS
def test_events_posted_over_http_get_decisions_on_the_right_stream_and_sync_screening_answers(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    web = GunicornServer(pipeline.env["REDIS_URL"], tmp_path / "web", **pipeline.env)
    web.start()
    try:
        pipeline.start_workers()
        sent = mixed_events(40, "e2e")
        status, answer = web.request("POST", "/v1/events/batch", {"events": sent})
        assert status == 200 and answer["counts"] == {"accepted": 40}
        wait_until(lambda: pipeline.settled(40), 120, "40 decisions\n" + pipeline.logs())
        assert_each_decided_once(pipeline, 40)
        routes: Counter[str] = Counter()
        for body in sent:
            status, state = web.request("GET", f"/v1/events/discord/{body['event_id']}")
            assert status == 200 and state["state"] == "screened"
            decision = state["decision"]
            routes[decision["route"]] += 1
            expected = "high" if is_harmful(body) else "low"
            assert decision["route"] == expected, (body["content"], decision)
            assert decision["event_id"] == body["event_id"]
        assert routes == {"high": 20, "low": 20}
        high = [fields[b"event"] for fields in pipeline.outcome_entries("high")]
        assert all(any(text.encode() in raw for text in HARMFUL) for raw in high)
        metrics = pipeline.processes.metrics("pipeline")  # the pipeline worker exports the ledger
        assert 'pipeline_events_total{outcome="accepted"} 40.0' in metrics
        assert "pipeline_ledger_balanced 1.0" in metrics
        # The synchronous path: through screen.sync on the broker, the reply through Redis.
        screened = pipeline.client.post(
            "/v1/screen", json={"texts": ["I will kill you", "lovely weather"]}, headers=AUTH
        )
        assert screened.status_code == 200, screened.get_data(as_text=True)
        assert [d["route"] for d in screened.get_json()["decisions"]] == ["high", "low"]
        assert pipeline.ledger().accepted == 40  # nothing more was queued on the stream
    finally:
        web.stop()


@FLAVOURS
def test_worker_killed_mid_batch_loses_nothing_and_decides_nothing_twice(
    pipeline: Pipeline,
) -> None:
    pipeline.start_workers()
    slow = mixed_events(20, "kill")
    slow[3]["content"] = f"a slow one {SLOW}"
    pipeline.post(slow)
    # Wait until a worker has claimed the slow batch (its entries are pending on its consumer).
    wait_until(pipeline.claimed_by_a_worker, 60, "a claim\n" + pipeline.logs())
    pipeline.processes.signal("cpu", signal.SIGKILL, group=True)
    pipeline.processes.wait("cpu", 10)
    assert pipeline.ledger().in_flight > 0
    pipeline.processes.start_worker("cpu-2", ["--cpu"])
    wait_until(lambda: pipeline.settled(20), 120, "recovery after SIGKILL\n" + pipeline.logs())
    assert_each_decided_once(pipeline, 20)


def test_a_slow_worker_keeps_its_batch_and_nothing_is_reclaimed_from_it_or_dead_lettered(
    redis_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    # The batch takes five times RECLAIM_IDLE_S, and the queue has room for every batch the
    # reclaimer would send: without renewing its claim, the worker would lose the batch to the
    # reclaimer MAX_DELIVERIES times over, and it would be dead-lettered while being screened.
    stack = Pipeline(
        redis_url,
        pipeline_var,
        tmp_path / "logs",
        reclaim_idle_s=2,
        chaos_slow_s=10,
        queue_batches_per_worker=20,
    )
    try:
        stack.start_workers()
        batch = mixed_events(10, "slow")
        batch[0]["content"] = f"slow to screen {SLOW}"
        stack.post(batch)
        wait_until(lambda: stack.settled(10), 120, "the slow batch\n" + stack.logs())
        assert_each_decided_once(stack, 10)
    finally:
        stack.processes.stop_all()


def run_script(pipeline: Pipeline, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the operators' scripts, with the pipeline's environment."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("pipeline", ["redis", "cluster"], indirect=True)
def test_poison_event_goes_to_the_dead_letter_stream_and_its_batch_is_decided(
    pipeline: Pipeline,
) -> None:
    pipeline.start_workers()
    batch = mixed_events(10, "poison")
    batch[4]["content"] = f"this one breaks the model {POISON}"
    pipeline.post(batch)
    wait_until(
        lambda: pipeline.settled(10),
        120,
        "the poison event to be dead-lettered\n" + pipeline.logs(),
    )
    assert_each_decided_once(pipeline, 10, dead=1)
    [dead] = pipeline.outcome_entries("dlq")
    assert POISON.encode() in dead[b"event"]
    assert b"fault injected" in dead[b"reason"]
    assert int(dead[b"deliveries"]) >= 3
    # `make ledger` and `make replay-dlq --list` read the same streams (every shard's).
    ledger = run_script(pipeline, "scripts/ledger.py")
    assert ledger.returncode == 0, ledger.stderr
    assert "dead-lettered 1 + in flight 0  ->  balanced" in ledger.stdout
    assert ledger.stdout.startswith("accepted 10 = ")
    listed = run_script(pipeline, "scripts/replay_dlq.py", "--list")
    assert listed.returncode == 0 and "1 dead-lettered event(s)" in listed.stdout, listed.stderr


def test_a_dead_lettered_event_is_looked_up_with_its_reason_and_its_text_is_never_logged(
    pipeline: Pipeline,
) -> None:
    pipeline.start_workers()
    batch = mixed_events(4, "dead")
    batch[1]["content"] = f"my phone number is 555 0199 {POISON}"
    pipeline.post(batch)
    wait_until(lambda: pipeline.settled(4), 120, "the dead letter\n" + pipeline.logs())
    lookup = pipeline.client.get(f"/v1/events/discord/{batch[1]['event_id']}", headers=AUTH)
    state = lookup.get_json()
    assert lookup.status_code == 200 and state["state"] == "dead_lettered", state
    assert state["reason"].startswith("PoisonedEvent: fault injected")
    assert "555 0199" not in lookup.get_data(as_text=True)
    [(_, dead)] = pipeline.redis.xrange(pipeline.stream.keys.dlq_stream)
    assert b"555 0199" not in dead[b"reason"]
    logs = "".join(pipeline.processes.log(name) for name in pipeline.processes.processes)
    assert "batch_screened" in logs and "555 0199" not in logs and POISON not in logs


def test_redis_restart_between_ingestion_and_screening_loses_nothing(
    own_redis: RedisServer, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(own_redis.url, pipeline_var, tmp_path / "logs")
    try:
        assert all(r["status"] == "accepted" for r in stack.post(mixed_events(30, "restart")))
        own_redis.kill()  # a crash: the append-only file (fsync always) must hold everything
        own_redis.start()
        stack.start_workers()
        wait_until(lambda: stack.settled(30), 120, "decisions after the restart\n" + stack.logs())
        assert_each_decided_once(stack, 30)
    finally:
        stack.processes.stop_all()


def test_backlog_over_its_limit_gives_503_and_drains_when_workers_return(
    redis_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(
        redis_url, pipeline_var, tmp_path / "logs", backlog_max=25, backlog_refresh_s=0
    )
    try:
        statuses = [
            stack.client.post("/v1/events", json=body, headers=AUTH).status_code
            for body in mixed_events(25, "backlog")
        ]
        assert statuses.count(202) == 20 and statuses[-1] == 503
        assert stack.client.get("/readyz").status_code == 503
        stack.start_workers()
        wait_until(lambda: stack.settled(20), 120, "the backlog to drain\n" + stack.logs())
        assert stack.client.get("/readyz").status_code == 200
        late = stack.client.post("/v1/events", json=event_body(event_id="late"), headers=AUTH)
        assert late.status_code == 202
    finally:
        stack.processes.stop_all()


def test_sigterm_lets_a_worker_finish_its_batch(pipeline: Pipeline) -> None:
    pipeline.start_workers()
    batch = mixed_events(10, "term")
    batch[0]["content"] = f"slow to screen {SLOW}"
    pipeline.post(batch)
    wait_until(pipeline.claimed_by_a_worker, 60, "a claim\n" + pipeline.logs())
    pipeline.processes.signal("cpu", signal.SIGTERM)
    assert pipeline.processes.wait("cpu", 60) == 0  # warm shutdown: the batch finishes first
    assert pipeline.ledger().in_flight == 0 or "batch_screened" in pipeline.processes.log("cpu")
    pipeline.processes.start_worker("cpu-2", ["--cpu"])  # takes over anything returned
    wait_until(lambda: pipeline.settled(10), 120, "all decisions\n" + pipeline.logs())
    assert_each_decided_once(pipeline, 10)
    assert "batch_screened" in pipeline.processes.log("cpu")


def test_batches_go_to_the_queue_with_live_workers(pipeline: Pipeline) -> None:
    # A "GPU" worker that runs on the CPU here (EMBED_DEVICE=cpu): it consumes screen.gpu0 only.
    pipeline.start_workers(("gpu0", ["--gpu", "0"]))
    pipeline.post(mixed_events(30, "route"))
    wait_until(lambda: pipeline.settled(30), 120, "decisions on screen.gpu0\n" + pipeline.logs())
    assert_each_decided_once(pipeline, 30)
    assert "batch_screened" in pipeline.processes.log("gpu0")
    assert pipeline.redis.llen("screen.cpu") == 0


def test_sync_screening_answers_through_a_worker_and_504s_without_one(
    redis_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(redis_url, pipeline_var, tmp_path / "logs", screen_sync_timeout_s=2)
    try:
        alone = stack.client.post("/v1/screen", json={"texts": ["hello"]}, headers=AUTH)
        assert alone.status_code == 504
        assert alone.get_json()["error"] == "screening_timeout"
        stack.processes.start_worker("cpu", ["--cpu"], SCREEN_SYNC_TIMEOUT_S="30")
        stack.redis.delete("screen.sync")  # the expired request of the first call
        slow_start = Pipeline(redis_url, pipeline_var, tmp_path / "logs2", screen_sync_timeout_s=60)

        def answered() -> bool:
            response = slow_start.client.post(
                "/v1/screen", json={"texts": ["I will kill you", "lovely weather"]}, headers=AUTH
            )
            return response.status_code == 200 and [
                d["route"] for d in response.get_json()["decisions"]
            ] == ["high", "low"]

        wait_until(answered, 90, "a synchronous answer\n" + stack.logs(), every=1)
        event = slow_start.client.post(
            "/v1/screen", json=event_body(content="you idiot"), headers=AUTH
        )
        assert event.status_code == 200
        assert event.get_json()["decisions"][0]["platform"] == "discord"
        assert stack.ledger().accepted == 0  # nothing was queued
    finally:
        stack.processes.stop_all()
