"""The app as deployed: gunicorn with gevent workers, real HTTP, concurrent clients."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from devtools.web_server import GunicornServer
from tests.factories import event_body
from webapp.access import SECURITY_HEADERS


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


def test_concurrent_events_share_script_calls_yet_each_entry_keeps_its_own_request_id(
    live_server: GunicornServer, redis_client: redis.Redis
) -> None:
    bodies = [event_body() for _ in range(80)]

    def send(n: int) -> tuple[int, Any]:
        return live_server.request(
            "POST", "/v1/events", bodies[n], headers={"X-Request-ID": f"combined-{n}"}
        )

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(send, range(80)))
    assert [status for status, _ in answers] == [202] * 80
    entries = {i.decode(): f for i, f in redis_client.xrange("events:ingest")}
    assert len(entries) == 80
    for n, (_, answer) in enumerate(answers):
        fields = entries[answer["stream_id"]]
        assert fields[b"request_id"].decode() == f"combined-{n}"
        assert json.loads(fields[b"event"])["event_id"] == bodies[n]["event_id"]


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


def chunked(path: str, body: bytes, chunk: int = 64 * 1024) -> bytes:
    """A POST of `body` with Transfer-Encoding: chunked, as raw HTTP/1.1."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: live-key\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    parts = [
        f"{len(body[i : i + chunk]):x}\r\n".encode() + body[i : i + chunk] + b"\r\n"
        for i in range(0, len(body), chunk)
    ]
    return head + b"".join(parts) + b"0\r\n\r\n"


def error_of(body: bytes) -> str:
    """The `error` code of a JSON error body (fails on anything else, HTML included)."""
    code: str = json.loads(body)["error"]
    return code


def test_a_chunked_body_with_a_bad_chunk_size_is_a_400_in_json(
    live_server: GunicornServer,
) -> None:
    request = chunked("/v1/events", json.dumps(event_body()).encode())
    broken = request.replace(b"\r\n\r\n", b"\r\n\r\nzz\r\n", 1)  # "zz" is no hex size
    status, headers, body = live_server.raw(broken)
    assert status == 400 and headers["content-type"] == "application/json"
    assert error_of(body) == "malformed_body"


def test_a_small_chunked_event_is_accepted(live_server: GunicornServer) -> None:
    status, _, body = live_server.raw(chunked("/v1/events", json.dumps(event_body()).encode()))
    assert status == 202, body


@pytest.mark.parametrize("size", [2 * 1024 * 1024, 16 * 1024 * 1024])
def test_a_chunked_event_over_the_body_limit_is_a_413_not_truncated(
    live_server: GunicornServer, redis_client: redis.Redis, size: int
) -> None:
    padded = json.dumps(event_body()).encode().ljust(size)  # valid JSON padded with spaces
    status, _, body = live_server.raw(chunked("/v1/events", padded))
    assert status == 413 and error_of(body) == "payload_too_large"
    assert redis_client.xlen("events:ingest") == 0


def test_a_chunked_batch_over_the_body_limit_is_a_413(live_server: GunicornServer) -> None:
    events = [event_body(content="x" * 9_000) for _ in range(200)]  # about 2 MiB
    status, _, body = live_server.raw(
        chunked("/v1/events/batch", json.dumps({"events": events}).encode())
    )
    assert status == 413 and error_of(body) == "payload_too_large"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400),
    ],
)
def test_errors_answered_by_gunicorn_itself_have_the_json_error_body(
    live_server: GunicornServer, request_bytes: bytes, status: int
) -> None:
    answer, headers, body = live_server.raw(request_bytes)
    assert answer == status
    assert headers["content-type"] == "application/json"
    assert error_of(body) and json.loads(body)["message"]
    assert {name.lower(): value for name, value in SECURITY_HEADERS}.items() <= headers.items()


def test_every_answer_of_the_app_forbids_sniffing_scripts_and_framing(
    live_server: GunicornServer,
) -> None:
    review = b'{"label":"TOXIC","reviewer":"<script>alert(1)</script>"}'
    for request_bytes in (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/events/discord/nope HTTP/1.1\r\nHost: t\r\nX-API-Key: live-key\r\n\r\n",
        b"POST /v1/events/discord/nope/review HTTP/1.1\r\nHost: t\r\nX-API-Key: live-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(review), review),
        b"XQWERTY /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    ):
        _, headers, _ = live_server.raw(request_bytes)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize(
    "target",
    [
        b"GET //",
        b"GET /v1//events/discord/x",
        b"POST /v1/events//batch",
        b"POST //v1/events",
        b"POST ///v1/events",
        b"GET //v1/decisions",
        b"GET //healthz",
    ],
)
def test_doubled_slashes_get_a_json_404_not_an_html_redirect(
    live_server: GunicornServer, target: bytes
) -> None:
    status, headers, body = live_server.raw(
        target + b" HTTP/1.1\r\nHost: t\r\nX-API-Key: live-key\r\nContent-Length: 0\r\n\r\n"
    )
    assert status == 404 and headers["content-type"] == "application/json"
    assert error_of(body) == "not_found"


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
