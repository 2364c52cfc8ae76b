"""The archive and reviews on a live pipeline: real Celery workers, Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from sqlalchemy import Engine, text

from devtools.pipeline import wait_until
from tasks import archiver
from tasks import runtime as runtime_module
from tasks.worker import worker_argv
from tests.factories import AUTH, POISON, ROOT, Pipeline, event_body, mixed_events, pipeline_env

pytestmark = pytest.mark.slow


def archived_ids(archive: Engine) -> list[tuple[str, str]]:
    """(outcome, event id) of every archived row."""
    with archive.connect() as conn:
        rows = conn.execute(text("SELECT outcome, event_id FROM decisions")).all()
    return [(str(outcome), str(event_id)) for outcome, event_id in rows]


def archive_complete(stack: Pipeline, archive: Engine, accepted: int) -> bool:
    """Whether every accepted event is decided or dead-lettered, and archived."""
    return (
        stack.settled(accepted)
        and len(archived_ids(archive)) == accepted
        and stack.archive_lag() == 0
    )


@pytest.mark.parametrize("flavour", ["redis", "cluster"], indirect=True)
def test_every_outcome_is_archived_once_even_after_the_archiver_is_killed_mid_batch(
    redis_url: str,
    *,
    database_url: str,
    archive: Engine,
    pipeline_var: Path,
    tmp_path: Path,
    flavour: dict[str, str],
) -> None:
    stack = Pipeline(
        redis_url, pipeline_var, tmp_path / "logs", database_url=database_url,
        archive_batch_size=3, archive_interval_s=0.5, reclaim_idle_s=10,
        decision_stream_maxlen=5, **flavour,
    )  # fmt: skip
    try:
        stack.start_workers()
        sent = mixed_events(60, "arch")
        for body in sent[:20]:
            body["user_id"] = "regular"
        sent[7]["content"] = f"this one breaks the model {POISON}"
        stack.post(sent)
        wait_until(lambda: len(archived_ids(archive)) >= 3, 180, "some rows\n" + stack.logs())
        stack.processes.signal("pipeline", signal.SIGKILL, group=True)
        stack.processes.wait("pipeline", 10)
        assert len(archived_ids(archive)) < 60  # killed before it had archived everything
        stack.processes.start_worker("pipeline-2", ["--pipeline"])
        wait_until(
            lambda: archive_complete(stack, archive, 60), 240, "the archive\n" + stack.logs()
        )
        rows = archived_ids(archive)
        assert sorted(event_id for _, event_id in rows) == sorted(b["event_id"] for b in sent)
        ledger = stack.ledger()
        outcomes = Counter(outcome for outcome, _ in rows)
        assert outcomes == {"high": ledger.high, "low": ledger.low, "dlq": ledger.dead_lettered}
        assert ledger.dead_lettered >= 1  # the poison event
        # The restarted pipeline worker serves the lag next to the ledger.
        assert "archive_lag_seconds 0.0" in stack.processes.metrics("pipeline-2")
        assert ledger.accepted == sum(outcomes.values())
        # Once archived, the decision streams shrink to their retention length by themselves.
        wait_until(
            lambda: stack.longest_decision_stream() <= 5,
            30,
            "decision streams trimmed\n" + stack.logs(),
        )
        assert stack.ledger().balanced

        # The history endpoint's numbers are the archive's rows for that user.
        response = stack.client.get("/v1/users/discord/regular", headers=AUTH)
        assert response.status_code == 200
        report = response.get_json()
        with archive.connect() as conn:
            mine = conn.execute(
                text(
                    "SELECT outcome, category, count(*) FROM decisions "
                    "WHERE user_id = 'regular' GROUP BY outcome, category"
                )
            ).all()
        expected_routes = {"high": 0, "low": 0}
        expected_categories: Counter[str] = Counter()
        dead = 0
        for outcome, category, n in mine:
            if outcome == "dlq":
                dead += n
            else:
                expected_routes[outcome] += n
                expected_categories[category] += n
        for window in ("24h", "7d", "all"):
            counts = report["counts"][window]
            assert counts["total"] == 20
            assert counts["dead_lettered"] == dead
            assert counts["by_route"] == expected_routes
            assert {k: v for k, v in counts["by_category"].items() if v} == expected_categories
        assert len(report["recent"]) == 20
        assert 0 <= report["posting_rate"]["posts_last_minute"] <= 19

        ledger_run = subprocess.run(
            [sys.executable, "scripts/ledger.py"],
            env={**os.environ, **stack.env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ledger_run.returncode == 0, ledger_run.stdout + ledger_run.stderr
        assert "archived 60 = high" in ledger_run.stdout and "complete" in ledger_run.stdout
    finally:
        stack.processes.stop_all()


def test_entries_committed_but_not_acknowledged_are_archived_once_on_the_next_tick(
    redis_url: str, database_url: str, archive: Engine, pipeline_var: Path, monkeypatch: Any
) -> None:
    # A crash between the commit and the acknowledgement, step by step: the next tick reads the
    # consumer's pending entries first and upserts them again.
    stack = Pipeline(redis_url, pipeline_var, pipeline_var / "unused-logs")
    for body in mixed_events(6, "crash"):
        stack.post([body])
    client = redis.Redis.from_url(redis_url)
    for entry_id, fields in client.xrange("events:ingest"):
        client.xadd(
            "events:risk:low",
            {"stream_id": entry_id, "event": fields[b"event"], "decision": _low_receipt(),
             "request_id": "r", "traceparent": fields[b"traceparent"]},
        )  # fmt: skip
    for key, value in pipeline_env(redis_url, pipeline_var, database_url=database_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(runtime_module, "_current", None)
    current = runtime_module.runtime()
    feed = current.archive_feed
    feed.ensure_groups()
    batch = feed.read(archiver.ARCHIVER, 4)
    assert current.archive_writer is not None
    current.archive_writer.write(archiver._rows(batch))  # committed ... and then the crash
    assert len(archived_ids(archive)) == 4
    assert archiver.archive() == {"archived": 6}  # 4 again (pending) + 2 new
    assert sorted(e for _, e in archived_ids(archive)) == [f"crash-{i}" for i in range(6)]
    assert feed.read(archiver.ARCHIVER, 10, pending=True) == []
    assert feed.lag_seconds() == 0.0
    client.close()


def _low_receipt() -> str:
    """A low-risk receipt, as a screening worker writes it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return orjson.dumps(
        {"risk_score": 0.01, "category": "LOW_RISK", "category_scores": {}, "route": "low",
         "flags": [], "similar": [], "heuristic_score": 0.0, "embedding_score": 0.0,
         "model": "m", "version": "v", "screened_at": now, "action": "allow"}
    ).decode()  # fmt: skip


def _probe(stack: Pipeline, queue: str, texts: list[str]) -> list[dict[str, Any]]:
    """Screen the default tenant's texts on the worker consuming `queue` and return its
    decisions (as /v1/screen does: the texts wait under a token, the task carries the token)."""
    services = stack.app.extensions["services"]
    token = f"probe-{uuid.uuid4().hex}"
    stack.redis.set(
        services.keys.sync_request(token),
        orjson.dumps([{"text": t, "tenant": "default"} for t in texts]),
    )
    services.celery.send_task("tasks.screening.screen_sync", args=[token], queue=queue)
    answers: list[bytes] = []

    def answered() -> bool:
        answer = stack.redis.lpop(services.keys.sync_reply(token))
        if answer is not None:
            answers.append(answer)  # type: ignore[arg-type]
        return bool(answers)

    wait_until(answered, 240, "an answer from " + queue, every=0.2)
    decisions: list[dict[str, Any]] = orjson.loads(answers[0])["decisions"]
    return decisions


def test_a_review_reaches_both_screening_workers_and_changes_their_next_decision(
    redis_url: str, database_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(
        redis_url, pipeline_var, tmp_path / "logs", database_url=database_url,
        review_propagation_s=1, archive_interval_s=0.5, reclaim_idle_s=60,
    )  # fmt: skip
    try:
        stack.processes.start_beat()
        stack.processes.start_worker("pipeline", ["--pipeline"])
        for name in ("a", "b"):  # two screening workers, each with a queue of its own to probe
            stack.processes.start(
                name,
                worker_argv(
                    ["screen.cpu", f"probe.{name}"],
                    hostname=f"{name}@%h",
                    pool="prefork",
                    concurrency=1,
                    loglevel="INFO",
                    events=False,
                ),
            )
        target = "you are such an idiot, honestly"
        before = {name: _probe(stack, f"probe.{name}", [target])[0] for name in ("a", "b")}
        stack.post([event_body(event_id="to-review", content=target)])
        wait_until(
            lambda: stack.client.post(
                "/v1/events/discord/to-review/review",
                json={"label": "LOW_RISK", "reviewer": "mod-1", "note": "banter"},
                headers=AUTH,
            ).status_code == 201,
            120,
            "the decision to be archived and reviewed\n" + stack.logs(),
        )  # fmt: skip
        example_id = "review:default:discord:to-review"
        # Each worker looked for labels when it last screened, before the review: once
        # REVIEW_PROPAGATION_S has passed, its very next screening call applies it.
        time.sleep(1.0)
        for name in ("a", "b"):
            after = _probe(stack, f"probe.{name}", [target])[0]
            top = after["similar"][0]
            assert top["id"] == example_id and top["label"] == "LOW_RISK"
            assert top["similarity"] > 0.99
            # Moved toward the moderator's verdict.
            assert after["risk_score"] < before[name]["risk_score"]
            assert (
                after["category_scores"]["LOW_RISK"] > before[name]["category_scores"]["LOW_RISK"]
            )
        # The pipeline's next decision on the same text shows the example too.
        stack.post([event_body(event_id="again", content=target, user_id="someone-else")])
        wait_until(lambda: stack.settled(2), 120, "the second decision\n" + stack.logs())
        state = stack.client.get("/v1/events/discord/again", headers=AUTH).get_json()
        assert state["decision"]["similar"][0]["id"] == example_id
    finally:
        stack.processes.stop_all()
