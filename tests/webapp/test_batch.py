"""POST /v1/events/batch: one result per item, in order; valid items land whatever the others do."""

from __future__ import annotations

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from tests.factories import AUTH, event_body


def post_batch(client: FlaskClient, events: object):  # type: ignore[no-untyped-def]
    """POST a batch envelope with the test key."""
    return client.post("/v1/events/batch", json={"events": events}, headers=AUTH)


def test_batch_mixing_valid_duplicate_invalid_and_conflicting_items(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    earlier = event_body()
    assert client.post("/v1/events", json=earlier, headers=AUTH).status_code == 202
    fresh = event_body()
    conflicting = {**earlier, "content": "rewritten after the fact"}
    invalid = event_body(platform="myspace", content="   ")
    fresh_again = dict(fresh)  # the same event twice in one batch
    items = [fresh, earlier, invalid, conflicting, fresh_again, 42]

    response = post_batch(client, items)

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r["status"] for r in results] == [
        "accepted", "duplicate", "invalid", "conflict", "duplicate", "invalid",
    ]  # fmt: skip
    assert results[1]["stream_id"] is not None
    assert results[4]["stream_id"] == results[0]["stream_id"]
    assert {e["field"] for e in results[2]["errors"]} == {"platform", "content"}
    assert results[2]["event_id"] == invalid["event_id"]
    assert "stream_id" not in results[3]
    assert results[5]["errors"][0]["field"] == "body"
    assert response.get_json()["counts"] == {
        "accepted": 1, "duplicate": 2, "invalid": 2, "conflict": 1,
    }  # fmt: skip
    queued = [
        orjson.loads(f[b"event"])["event_id"] for _, f in redis_client.xrange("events:ingest")
    ]
    assert queued == [earlier["event_id"], fresh["event_id"]]


def test_batch_of_500_is_accepted_and_queued_in_order(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    items = [event_body() for _ in range(500)]
    response = post_batch(client, items)
    assert response.status_code == 200
    assert response.get_json()["counts"] == {"accepted": 500}
    queued = [
        orjson.loads(f[b"event"])["event_id"] for _, f in redis_client.xrange("events:ingest")
    ]
    assert queued == [item["event_id"] for item in items]


def test_batch_over_500_is_a_422_naming_events(client: FlaskClient) -> None:
    response = post_batch(client, [event_body() for _ in range(501)])
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "events"


@pytest.mark.parametrize(
    "body", [{"events": []}, {"events": "nope"}, {"items": []}, [], {"events": [], "x": 1}]
)
def test_bad_envelope_is_a_422(client: FlaskClient, body: object) -> None:
    response = client.post("/v1/events/batch", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["error"] == "validation_failed"


def test_all_invalid_batch_writes_nothing(client: FlaskClient, redis_client: redis.Redis) -> None:
    response = post_batch(client, [{"event_id": "x"}, {}])
    assert [r["status"] for r in response.get_json()["results"]] == ["invalid", "invalid"]
    assert redis_client.exists("events:ingest") == 0


def test_batch_needs_a_key(client: FlaskClient) -> None:
    response = client.post("/v1/events/batch", json={"events": [event_body()]})
    assert response.status_code == 401
