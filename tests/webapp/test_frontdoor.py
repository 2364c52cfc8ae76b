"""The lane: POSTs to the ingest routes are answered before Flask, with everything Flask's
hooks gave them; other methods on those paths still get Flask's answers."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry import trace

from tests.factories import AUTH, event_body
from webapp.access import SECURITY_HEADERS


def test_posts_to_the_ingest_routes_never_reach_flask_and_other_requests_do(app: Flask) -> None:
    seen: list[str] = []
    app.before_request(lambda: seen.append("flask") and None)
    client = app.test_client()
    assert client.post("/v1/events", json=event_body(), headers=AUTH).status_code == 202
    batch = {"events": [event_body()]}
    assert client.post("/v1/events/batch", json=batch, headers=AUTH).status_code == 200
    assert seen == []
    assert client.get("/v1/events/discord/unknown", headers=AUTH).status_code == 404
    assert seen == ["flask"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (event_body(), AUTH, 202),
        (event_body(), {}, 401),
        ({"event_id": "x"}, AUTH, 422),
    ],
)
def test_lane_answers_carry_the_request_id_and_security_headers_whatever_their_status(
    client: FlaskClient, body: dict[str, object], headers: dict[str, str], status: int
) -> None:
    answer = client.post("/v1/events", json=body, headers={**headers, "X-Request-ID": "rid-1"})
    assert answer.status_code == status
    assert answer.headers["X-Request-ID"] == "rid-1"
    assert answer.headers["Content-Type"] == "application/json"
    for name, value in SECURITY_HEADERS:
        assert answer.headers[name] == value
    if status >= 400:
        assert answer.get_json()["request_id"] == "rid-1"


def test_an_unauthenticated_lane_answer_carries_the_bearer_challenge(client: FlaskClient) -> None:
    answer = client.post("/v1/events/batch", json={"events": []})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="screening"'


def test_options_on_an_ingest_route_is_still_answered_by_flask_with_its_methods(
    client: FlaskClient,
) -> None:
    answer = client.options("/v1/events", headers=AUTH)
    assert answer.status_code == 200
    assert set(answer.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_a_lane_answer_whose_body_is_never_read_leaves_no_span_current(
    client: FlaskClient,
) -> None:
    # The tests' process records spans, so the lane runs under the WSGI instrumentation.
    kept = [client.post("/v1/events", json=event_body(), headers=AUTH) for _ in range(2)]
    assert [answer.status_code for answer in kept] == [202, 202]  # bodies never read
    assert trace.get_current_span() is trace.INVALID_SPAN
