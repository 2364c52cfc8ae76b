"""Operations on a live stack: traces across the stream, worker and pipeline metrics under
prefork, the dead-letter replay, and a Locust smoke run.

One stack for the module: redis-server, gunicorn (gevent), beat, the pipeline worker and a CPU
worker with two prefork children, every process exporting its spans to its log with
OpenTelemetry's console exporter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from core.stream import ScreeningStream
from devtools.pipeline import PipelineProcesses, wait_until
from devtools.redis_server import RedisServer
from devtools.web_server import GunicornServer
from tests.factories import API_KEY, POISON, ROOT, event_body, mixed_events, pipeline_env

pytestmark = pytest.mark.slow

TRACING = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "200"}


class Stack:
    """The module's processes and views of them."""

    def __init__(self, store: RedisServer, var: Path, logs: Path) -> None:
        self.env = pipeline_env(store.url, var, **TRACING)
        self.processes = PipelineProcesses(self.env, logs)
        self.web = GunicornServer(store.url, logs / "web", **self.env)
        self.redis = redis.Redis.from_url(store.url)
        self.stream = ScreeningStream(self.redis)

    def settled(self, accepted: int) -> bool:
        """Whether `accepted` events were accepted and none is in flight."""
        ledger = self.stream.ledger()
        return ledger.accepted == accepted and ledger.in_flight == 0

    def samples(self, process: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """A worker's /metrics now: (series name, labels) -> value."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(self.processes.metrics(process))
            for sample in family.samples
        }

    def total(self, process: str, name: str, **labels: str) -> float:
        """The sum of a worker's series of one name whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value
            for (series, found), value in self.samples(process).items()
            if series == name and wanted <= set(found)
        )

    def logs(self) -> str:
        """The processes' logs, for failure messages."""
        return "\n".join(
            f"--- {name}\n{self.processes.log(name)[-2000:]}" for name in self.processes.processes
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pipeline_var: Path) -> Iterator[Stack]:
    """The live stack, started once for the module."""
    store = RedisServer(tmp_path_factory.mktemp("observability-redis"))
    store.start()
    running = Stack(store, pipeline_var, tmp_path_factory.mktemp("observability"))
    # The reference index and the exported model first, as `make run` does (`make index`):
    # a worker that took minutes over its first batch would see it reclaimed meanwhile.
    subprocess.run(
        [sys.executable, "scripts/build_index.py"],
        cwd=ROOT,
        env={**os.environ, **running.env},
        check=True,
        capture_output=True,
        timeout=1200,
    )
    try:
        running.web.start()
        running.processes.start_beat()
        running.processes.start_worker("pipeline", ["--pipeline"])
        running.processes.start_worker("cpu", ["--cpu", "--concurrency", "2"])
        yield running
    finally:
        running.processes.stop_all()
        running.web.stop()
        store.stop()


def printed_spans(log: str) -> list[dict[str, Any]]:
    """Spans the console exporter wrote among a process's log lines."""
    decoder = json.JSONDecoder()
    spans, at = [], 0
    while (at := log.find('{\n    "name": ', at)) >= 0:
        span, end = decoder.raw_decode(log, at)
        spans.append(span)
        at = end
    return spans


def linked_to(spans: list[dict[str, Any]], trace_id: str) -> list[dict[str, Any]]:
    """Spans with a link into the trace `trace_id` (32 hex digits)."""
    return [
        span
        for span in spans
        if any(link["context"]["trace_id"] == f"0x{trace_id}" for link in span.get("links", []))
    ]


def test_one_events_trace_runs_from_its_request_to_its_screening_through_links(
    stack: Stack,
) -> None:
    accepted = stack.stream.ledger().accepted
    status, _ = stack.web.request("POST", "/v1/events", event_body(event_id="traced-1"))
    assert status == 202
    [(_, fields)] = stack.redis.xrevrange("events:ingest", count=1)
    _, trace_id, send_span_id, _ = fields[b"traceparent"].decode().split("-")
    wait_until(lambda: stack.settled(accepted + 1), 120, "the decision\n" + stack.logs())
    assert stack.stream.ledger().dead_lettered == 0

    web = printed_spans((stack.web.work_dir / "gunicorn.log").read_text())
    request = [s for s in web if s["context"]["trace_id"] == f"0x{trace_id}"]
    names = {s["name"] for s in request}
    assert "send events:ingest" in names and "POST /v1/events" in names, names
    [send] = [s for s in request if s["name"] == "send events:ingest"]
    assert send["context"]["span_id"] == f"0x{send_span_id}"
    assert send["attributes"]["messaging.destination.name"] == "events:ingest"

    def linked(process: str, name: str) -> list[dict[str, Any]]:
        spans = printed_spans(stack.processes.log(process))
        return [s for s in linked_to(spans, trace_id) if s["name"] == name]

    wait_until(lambda: bool(linked("cpu", "process events:ingest")), 30, "the worker's span")
    [receive] = linked("pipeline", "receive events:ingest")
    [process] = linked("cpu", "process events:ingest")
    assert receive["attributes"]["messaging.operation.type"] == "receive"
    assert receive["attributes"]["messaging.consumer.group.name"] == "screeners"
    assert process["attributes"]["messaging.operation.type"] == "process"
    assert process["attributes"]["messaging.system"] == "redis"
    # The screening task continues the batcher's trace (Celery carries it in the task headers).
    assert process["context"]["trace_id"] == receive["context"]["trace_id"]


def test_worker_metrics_add_up_over_the_prefork_children(stack: Stack) -> None:
    before = stack.stream.ledger()
    sent = mixed_events(40, "metrics")
    status, answer = stack.web.request("POST", "/v1/events/batch", {"events": sent})
    assert status == 200 and answer["counts"] == {"accepted": 40}
    wait_until(lambda: stack.settled(before.accepted + 40), 120, "40 decisions\n" + stack.logs())
    ledger = stack.stream.ledger()
    decided = ledger.high + ledger.low
    assert stack.total("cpu", "screening_decisions_total") == decided
    assert stack.total("cpu", "screening_decisions_total", route="high") == ledger.high
    assert stack.total("cpu", "screening_end_to_end_seconds_count") == decided
    assert stack.total("cpu", "screening_queue_wait_seconds_count", queue="screen.cpu") >= 40
    assert stack.total("cpu", "screening_events_total", queue="screen.cpu") >= 40
    assert stack.total("cpu", "screening_batch_size_events_sum", queue="screen.cpu") >= 40
    for stage in ("normalize", "rules", "embed", "search", "score"):
        assert stack.total("cpu", "screening_stage_seconds_count", stage=stage) > 0, stage
    lookups = stack.total("cpu", "screening_embedding_cache_lookups_total")
    assert lookups >= 40
    assert stack.total("cpu", "screening_rules_fired_total") > 0
    assert stack.total("cpu", "screening_model_info") >= 1


def test_pipeline_metrics_report_the_ledger_the_backlog_and_the_queues(stack: Stack) -> None:
    ledger = stack.stream.ledger()
    assert stack.total("pipeline", "pipeline_events_total", outcome="accepted") == ledger.accepted
    assert stack.total("pipeline", "pipeline_ledger_balanced") == 1
    assert stack.total("pipeline", "pipeline_redis_up") == 1
    assert stack.total("pipeline", "pipeline_backlog_events") == 0
    assert stack.total("pipeline", "pipeline_oldest_unprocessed_age_seconds") == 0
    assert stack.total("pipeline", "pipeline_live_workers", queue_name="screen.cpu") == 1
    samples = stack.samples("pipeline")
    queues = {
        dict(labels)["queue_name"] for name, labels in samples if name == "celery_queue_length"
    }
    assert {"screen.cpu", "screen.sync", "pipeline"} <= queues
    # Every event went to a screening batch: sent by the batcher, or taken in by the worker.
    dispatched = sum(
        stack.total(process, "pipeline_dispatched_events_total", queue_name="screen.cpu")
        for process in ("pipeline", "cpu")
    )
    assert dispatched >= ledger.accepted


def test_a_killed_worker_process_leaves_no_live_gauge_behind(stack: Stack) -> None:
    main = stack.processes.processes["cpu"].pid  # the launcher execs Celery: same pid
    port = stack.processes.metrics_ports["cpu"]
    directory = Path(stack.env["VAR_DIR"], "prometheus", f"cpu-{port}")
    live = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("gauge_live*_*.db")}
    victims = sorted(_children(main) & live)  # prefork children that reported a live gauge
    assert victims, (_children(main), live)
    os.kill(victims[0], signal.SIGKILL)
    wait_until(lambda: not _alive(victims[0]), 10, "the child to die")
    stack.processes.metrics("cpu")  # a scrape notices the dead process
    left = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("gauge_live*_*.db")}
    assert victims[0] not in left


def test_locust_smoke_run_against_the_live_stack_stays_within_its_limits(
    stack: Stack, tmp_path: Path
) -> None:
    reports = tmp_path / "load"
    reports.mkdir()
    run = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
            "--headless", "--only-summary", "--host", stack.web.url,
            "--users", "4", "--spawn-rate", "4", "--run-time", "8s",
            "--csv", str(reports / "smoke"), "--html", str(reports / "smoke.html"),
            "--max-fail-ratio", "0.05", "--max-p99-ms", "15000",
        ],
        env={**os.environ, "LOAD_API_KEY": API_KEY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stats = (reports / "smoke_stats.csv").read_text()
    assert "POST /v1/events" in stats and "Aggregated" in stats
    assert (reports / "smoke.html").stat().st_size > 0


def test_replay_sends_a_dead_lettered_event_back_once_and_the_ledger_stays_balanced(
    stack: Stack,
) -> None:
    before = stack.stream.ledger()
    poisoned = event_body(event_id="poisoned-1", content=f"breaks the model {POISON}")
    assert stack.web.request("POST", "/v1/events", poisoned)[0] == 202
    accepted = before.accepted + 1

    def dead(count: int) -> bool:
        ledger = stack.stream.ledger()
        return stack.settled(accepted) and ledger.dead_lettered == count

    wait_until(lambda: dead(before.dead_lettered + 1), 120, "dead-lettering\n" + stack.logs())
    replay = subprocess.run(
        [sys.executable, "scripts/replay_dlq.py"],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert f"sent {before.dead_lettered + 1} dead-lettered event(s) back" in replay.stdout
    ledger = stack.stream.ledger()
    assert ledger.balanced and ledger.replayed == before.replayed + before.dead_lettered + 1
    # Still poisoned: screened again, it fails MAX_DELIVERIES times and comes back, once.
    wait_until(lambda: dead(before.dead_lettered + 1), 120, "dead-lettering again")
    ledger = stack.stream.ledger()
    assert ledger.balanced and ledger.accepted == accepted
    dead_total = stack.total("pipeline", "pipeline_events_total", outcome="dead_lettered")
    replayed = stack.total("pipeline", "pipeline_events_total", outcome="replayed")
    assert dead_total - replayed == ledger.dead_lettered


def _parent(pid: int) -> int:
    """The parent pid of a process (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> set[int]:
    """Direct children of a process."""
    return {int(p.name) for p in Path("/proc").glob("[0-9]*") if _parent(int(p.name)) == pid}


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
