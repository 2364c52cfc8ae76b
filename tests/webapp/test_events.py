"""The /v1/events contract: every status code, dedup, conflicts, lookups and the stream entry."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from tests.factories import API_KEY, AUTH, event_body, make_app


def post(client: FlaskClient, body: object, **kwargs: object):  # type: ignore[no-untyped-def]
    """POST a JSON body to /v1/events with the test key."""
    headers = {**AUTH, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return client.post("/v1/events", json=body, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_new_event_is_accepted_with_202_and_lands_on_the_stream(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = event_body()
    response = post(client, body, headers={"X-Request-ID": "req-123"})
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["status"] == "accepted"
    assert answer["event_id"] == body["event_id"]
    assert response.headers["X-Request-ID"] == "req-123"
    [(stream_id, fields)] = redis_client.xrange("events:ingest")
    assert stream_id.decode() == answer["stream_id"]
    queued = orjson.loads(fields[b"event"])
    assert queued["content"] == body["content"]
    assert fields[b"request_id"] == b"req-123"
    assert fields[b"traceparent"].startswith(b"00-")
    assert int(fields[b"ingested_at"]) > 0


def test_incoming_trace_continues_on_the_stream_entry_through_the_send_span(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert post(client, event_body(), headers={"traceparent": parent}).status_code == 202
    [(_, fields)] = redis_client.xrange("events:ingest")
    version, trace_id, span_id, _flags = fields[b"traceparent"].decode().split("-")
    assert (version, trace_id) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert span_id != "00f067aa0ba902b7"  # the producer span's own id, a child of the caller's


def test_retry_of_the_same_event_is_a_duplicate_with_the_original_stream_id(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = event_body()
    first = post(client, body)
    second = post(client, dict(reversed(list(body.items()))))  # same content, other key order
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.get_json()["status"] == "duplicate"
    assert second.get_json()["stream_id"] == first.get_json()["stream_id"]
    assert redis_client.xlen("events:ingest") == 1


def test_same_identity_with_other_content_is_a_409_conflict(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = event_body()
    assert post(client, body).status_code == 202
    response = post(client, {**body, "content": "something else entirely"})
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    assert redis_client.xlen("events:ingest") == 1


def test_same_event_id_on_another_platform_is_another_event(client: FlaskClient) -> None:
    body = event_body()
    assert post(client, body).status_code == 202
    assert post(client, {**body, "platform": "slack"}).status_code == 202


def test_dedup_record_expires_with_the_window(redis_url: str, redis_client: redis.Redis) -> None:
    client = make_app(redis_url, dedup_window_s=60).test_client()
    body = event_body()
    post(client, body)
    ttl = redis_client.ttl(f"events:dedup:default:discord:{body['event_id']}")
    assert 0 < ttl <= 60


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic dGVzdC1rZXk="}, 401),
        ({"X-API-Key": API_KEY}, 202),
        ({"Authorization": f"Bearer {API_KEY}"}, 202),
    ],
)
def test_api_key_is_required_in_either_header(
    client: FlaskClient, headers: dict[str, str], status: int
) -> None:
    response = client.post("/v1/events", json=event_body(), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.get_json()["error"] == "unauthorized"
        assert "WWW-Authenticate" in response.headers


def test_the_key_never_appears_in_the_logs(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    post(client, event_body())
    client.post("/v1/events", json=event_body(), headers={"X-API-Key": "secret-wrong-key"})
    out = capsys.readouterr()
    assert API_KEY not in out.out + out.err
    assert "secret-wrong-key" not in out.out + out.err


def test_malformed_json_is_a_400(client: FlaskClient) -> None:
    response = client.post(
        "/v1/events", data=b'{"event_id": ', headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed_json"


def test_invalid_utf8_is_a_400_naming_the_encoding(client: FlaskClient) -> None:
    body = orjson.dumps(event_body(content="caf\u00e9")).replace("é".encode(), b"\xe9")
    response = client.post(
        "/v1/events", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_encoding"
    assert "UTF-8" in response.get_json()["message"]


def test_gzip_body_is_accepted(client: FlaskClient) -> None:
    data = gzip.compress(orjson.dumps(event_body()))
    response = client.post(
        "/v1/events",
        data=data,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 202


def test_corrupt_gzip_is_a_400(client: FlaskClient) -> None:
    response = client.post(
        "/v1/events",
        data=b"\x1f\x8b\x08\x00garbage",
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_encoding"


def test_bytes_after_the_gzip_data_are_a_400(client: FlaskClient) -> None:
    response = client.post(
        "/v1/events",
        data=gzip.compress(orjson.dumps(event_body())) + b"\x00JUNK",
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_encoding"
    assert "after the gzip data" in response.get_json()["message"]


def test_a_gzip_body_of_several_members_is_one_body(client: FlaskClient) -> None:
    raw = orjson.dumps(event_body())
    members = gzip.compress(raw[:10]) + gzip.compress(raw[10:])  # RFC 1952, as `cat a.gz b.gz`
    response = client.post(
        "/v1/events",
        data=members,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 202, response.get_json()


def test_members_that_together_pass_the_cap_are_a_413(redis_url: str) -> None:
    client = make_app(redis_url, max_decompressed_bytes=64 * 1024).test_client()
    half = gzip.compress(b" " * (40 * 1024))
    response = client.post(
        "/v1/events",
        data=half + half,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413


def test_gzip_bomb_is_a_413_without_inflating_past_the_cap(redis_url: str) -> None:
    client = make_app(redis_url, max_decompressed_bytes=64 * 1024).test_client()
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # 50 MiB of spaces, ~50 KiB compressed
    assert len(bomb) < 1024 * 1024
    response = client.post(
        "/v1/events",
        data=bomb,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert "decompressed" in response.get_json()["message"]


def test_body_over_the_size_limit_is_a_413(redis_url: str) -> None:
    client = make_app(redis_url, max_body_bytes=4096).test_client()
    response = post(client, event_body(metadata={"pad": "x" * 8000}))
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Content-Type": "application/json", "Content-Encoding": "br"},
    ],
)
def test_unsupported_media_type_is_a_415(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(
        "/v1/events", data=orjson.dumps(event_body()), headers={**AUTH, **headers}
    )
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def _future() -> str:
    return (datetime.now(UTC) + timedelta(minutes=10)).isoformat()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"event_id": "has space"}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"platform": "myspace"}, "platform"),
        ({"event_type": "poke"}, "event_type"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 129}, "user_id"),
        ({"content": "   \n\t "}, "content"),
        ({"content": ""}, "content"),
        ({"content": "x" * 10_001}, "content"),
        ({"content": 12345}, "content"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": 1767225600}, "timestamp"),
        ({"timestamp": "2026-02-30T00:00:00Z"}, "timestamp"),
        ({"metadata": {"blob": "x" * (16 * 1024)}}, "metadata"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_each_invalid_field_is_named_in_a_422(
    client: FlaskClient, override: dict[str, object], field: str
) -> None:
    response = post(client, event_body(**override))
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["error"] == "validation_failed"
    assert field in [error["field"] for error in answer["errors"]]


def test_timestamp_in_the_future_beyond_five_minutes_is_a_422(client: FlaskClient) -> None:
    response = post(client, event_body(timestamp=_future()))
    assert response.status_code == 422
    assert "future" in response.get_json()["errors"][0]["message"]


def test_timestamp_a_minute_ahead_is_tolerated(client: FlaskClient) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert post(client, event_body(timestamp=ahead)).status_code == 202


def test_missing_fields_are_each_listed(client: FlaskClient) -> None:
    response = post(client, {"platform": "discord"})
    fields = {error["field"] for error in response.get_json()["errors"]}
    assert {"event_id", "event_type", "user_id", "content", "timestamp"} <= fields


def test_body_that_is_not_an_object_is_a_422(client: FlaskClient) -> None:
    response = post(client, [1, 2, 3])
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "body"


def test_rate_limit_gives_429_with_retry_after(redis_url: str) -> None:
    client = make_app(redis_url, rate_limit_per_s=1.0, rate_limit_burst=3).test_client()
    statuses = [post(client, event_body()).status_code for _ in range(5)]
    assert statuses[:3] == [202, 202, 202]
    assert statuses[3:] == [429, 429]
    response = post(client, event_body())
    assert int(response.headers["Retry-After"]) >= 1


def test_rate_limit_is_off_by_default(client: FlaskClient) -> None:
    assert all(post(client, event_body()).status_code == 202 for _ in range(30))


def test_backlog_over_its_high_water_mark_gives_503(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = make_app(redis_url, backlog_max=10).test_client()
    for _ in range(8):
        assert post(client, event_body()).status_code == 202
    response = post(client, event_body())
    assert response.status_code == 503
    assert response.get_json()["error"] == "overloaded"
    assert int(response.headers["Retry-After"]) >= 1
    assert client.get("/readyz").status_code == 503
    # A consumer group that has read and acknowledged everything brings the backlog to zero.
    redis_client.xgroup_create("events:ingest", "screeners", id="0")
    entries = redis_client.xreadgroup("screeners", "c1", {"events:ingest": ">"})
    ids = [entry_id for entry_id, _ in entries[0][1]]
    redis_client.xack("events:ingest", "screeners", *ids)
    assert post(client, event_body()).status_code == 202
    assert client.get("/readyz").status_code == 200


def test_pending_entries_count_as_backlog(redis_url: str, redis_client: redis.Redis) -> None:
    client = make_app(redis_url, backlog_max=10).test_client()
    for _ in range(9):
        post(client, event_body())
    redis_client.xgroup_create("events:ingest", "screeners", id="0")
    redis_client.xreadgroup("screeners", "c1", {"events:ingest": ">"})  # read, never acked
    assert post(client, event_body()).status_code == 503


def test_lookup_returns_the_queued_state(client: FlaskClient) -> None:
    body = event_body()
    stream_id = post(client, body).get_json()["stream_id"]
    response = client.get(f"/v1/events/discord/{body['event_id']}", headers=AUTH)
    assert response.status_code == 200
    state = response.get_json()
    assert state["state"] == "queued"
    assert state["stream_id"] == stream_id


@pytest.mark.parametrize("path", ["/v1/events/discord/never-seen", "/v1/events/myspace/x"])
def test_lookup_of_an_unknown_event_is_a_404(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_lookup_needs_a_key(client: FlaskClient) -> None:
    assert client.get("/v1/events/discord/x").status_code == 401


def test_request_id_is_generated_when_absent_or_unsafe(client: FlaskClient) -> None:
    plain = post(client, event_body())
    unsafe = post(client, event_body(), headers={"X-Request-ID": "bad id with spaces"})
    assert len(plain.headers["X-Request-ID"]) == 32
    assert unsafe.headers["X-Request-ID"] != "bad id with spaces"


def test_wrong_method_is_a_405_in_json(client: FlaskClient) -> None:
    response = client.put("/v1/events", json={}, headers=AUTH)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
