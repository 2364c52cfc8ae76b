"""The app as deployed: gunicorn with gevent workers, real HTTP, concurrent clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from devtools.web_server import GunicornServer
from tests.factories import event_body


def test_40_concurrent_submissions_of_one_event_give_one_entry_and_one_stream_id(
    live_server: GunicornServer, redis_client: redis.Redis
) -> None:
    body = event_body()
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(
            pool.map(lambda _: live_server.request("POST", "/v1/events", body), range(40))
        )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 39 + [202]
    assert len({answer["stream_id"] for _, answer in answers}) == 1
    assert redis_client.xlen("events:ingest") == 1


def test_concurrent_conflicting_versions_of_one_event_queue_exactly_one(
    live_server: GunicornServer, redis_client: redis.Redis
) -> None:
    base = event_body()
    versions = [{**base, "content": f"version {i}"} for i in range(40)]
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda b: live_server.request("POST", "/v1/events", b), versions))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] + [409] * 39
    assert redis_client.xlen("events:ingest") == 1


def test_metrics_add_up_across_gunicorn_workers(live_server: GunicornServer) -> None:
    assert len(live_server.worker_pids()) == 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: live_server.request("POST", "/v1/events", event_body()), range(30)))
    status, text = live_server.request("GET", "/metrics")
    assert status == 200
    assert 'ingest_events_total{outcome="accepted",platform="discord"} 30.0' in text
    assert "ingest_latency_seconds_bucket" in text
    # prometheus-flask-exporter's own request metrics, summed over the workers too.
    assert 'flask_http_request_total{method="POST",status="202"} 30.0' in text


def test_web_workers_never_load_torch(live_server: GunicornServer) -> None:
    live_server.request("POST", "/v1/events", event_body())
    live_server.request("POST", "/v1/events/batch", {"events": [event_body()]})
    pids = live_server.worker_pids()
    assert pids
    for pid in pids:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in maps
        assert "onnxruntime" not in maps


def _series(server: GunicornServer) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every series /metrics exports now: name and labels, without values."""
    status, text = server.request("GET", "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_with_unknown_methods_get_501_and_add_no_metric_series(
    live_server: GunicornServer,
) -> None:
    assert live_server.request("GET", "/healthz")[0] == 200
    before = _series(live_server)
    for method in ("XQWERTY", "QWERTYX", "BREW", "PROPFIND"):
        status, body = live_server.request(method, "/healthz")
        assert status == 501
        assert body["error"] == "method_not_implemented"
    after = _series(live_server)
    assert after == before
    methods = {dict(labels).get("method") for _, labels in after} - {None}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
