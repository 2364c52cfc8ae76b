"""Property-based fuzzing: no request body, however odd, gets a 5xx."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import AUTH, event_body, make_app

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

field_values = st.one_of(
    json_values,
    st.text(max_size=300),
    st.sampled_from(
        ["discord", "slack", "message", "2026-01-01T00:00:00Z", "", " ", "\u200b", "\x00"]
    ),
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with some fields replaced, removed or added."""
    body = event_body()
    for key in draw(st.lists(st.sampled_from([*body, "extra"]), max_size=4)):
        action = draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            body.pop(key, None)
        else:
            body[key] = draw(field_values)
    return body


def _assert_no_5xx(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


@FUZZ
@given(body=st.one_of(json_values, mutated_events()))
def test_any_json_body_to_the_single_endpoint_gets_no_5xx(redis_url: str, body: Any) -> None:
    client: FlaskClient = make_app(redis_url).test_client()
    _assert_no_5xx(client.post("/v1/events", json=body, headers=AUTH))


@FUZZ
@given(items=st.lists(st.one_of(json_values, mutated_events()), max_size=8))
def test_any_batch_gets_no_5xx(redis_url: str, items: list[Any]) -> None:
    client: FlaskClient = make_app(redis_url).test_client()
    _assert_no_5xx(client.post("/v1/events/batch", json={"events": items}, headers=AUTH))


@FUZZ
@given(
    raw=st.binary(max_size=400),
    gzipped=st.booleans(),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
            "application/problem+json",
        ]
    ),
)
def test_any_bytes_get_no_5xx(redis_url: str, raw: bytes, gzipped: bool, content_type: str) -> None:
    client: FlaskClient = make_app(redis_url).test_client()
    headers = {**AUTH, "Content-Type": content_type}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        raw = gzip.compress(raw) if raw[:1] != b"x" else raw  # sometimes corrupt gzip
    for path in ("/v1/events", "/v1/events/batch"):
        _assert_no_5xx(client.post(path, data=raw, headers=headers))


@FUZZ
@given(content=st.text(min_size=1, max_size=200))
def test_any_unicode_content_round_trips_through_the_stream(redis_url: str, content: str) -> None:
    client: FlaskClient = make_app(redis_url).test_client()
    body = event_body(content=content)
    response = client.post("/v1/events", json=body, headers=AUTH)
    _assert_no_5xx(response)
    if response.status_code == 202:
        client_redis = redis.Redis.from_url(redis_url)
        [(_, fields)] = client_redis.xrevrange("events:ingest", count=1)
        client_redis.close()
        assert orjson.loads(fields[b"event"])["content"] == content
    else:
        assert response.status_code == 422
        assert not content.strip()


_archive_apps: dict[tuple[str, str], FlaskClient] = {}


def archive_client(redis_url: str, database_url: str) -> FlaskClient:
    """A client of one app per database for all of a test's examples (each app's engine holds
    its own connections)."""
    key = (redis_url, database_url)
    if key not in _archive_apps:
        _archive_apps[key] = make_app(redis_url, database_url=database_url).test_client()
    return _archive_apps[key]


query_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["0", "1", "500", "501", "-1", "true", "no", "high", "dlq", "TOXIC", "discord",
         "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "WyIyMDI2Il0", "\x00", "%", ""]
    ),
)  # fmt: skip
query_names = st.sampled_from(
    ["platform", "user_id", "channel_id", "category", "route", "outcome", "since", "until",
     "reviewed", "limit", "cursor", "colour"]
)  # fmt: skip


@FUZZ
@given(params=st.dictionaries(query_names, query_values, max_size=5))
def test_any_search_query_gets_no_5xx(redis_url: str, database_url: str, params: Any) -> None:
    client = archive_client(redis_url, database_url)
    _assert_no_5xx(client.get("/v1/decisions", query_string=params, headers=AUTH))


path_parts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"),
    min_size=1,
    max_size=20,
)
review_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"label": field_values, "reviewer": field_values, "note": field_values}
    ),
)


@FUZZ
@given(
    body=review_bodies,
    path=st.tuples(st.sampled_from(["discord", "web_chat", "nope", "%00"]), path_parts),
    user_id=st.text(min_size=1, max_size=140),
)
def test_any_review_or_user_lookup_gets_no_5xx(
    redis_url: str, database_url: str, body: Any, path: tuple[str, str], user_id: str
) -> None:
    client = archive_client(redis_url, database_url)
    platform, event_id = path
    _assert_no_5xx(client.post(f"/v1/events/{platform}/{event_id}/review", json=body, headers=AUTH))
    _assert_no_5xx(client.get(f"/v1/users/{platform}/{user_id}", headers=AUTH))
