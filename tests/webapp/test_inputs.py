"""Inputs that once reached a 500 or were accepted and then unreadable: each gets its 4xx."""

from __future__ import annotations

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from core.models import MAX_METADATA_DEPTH
from tests.factories import AUTH, event_body, nested

OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("timestamp", OVERFLOWING)
def test_a_timestamp_that_overflows_in_utc_is_a_422_naming_it(
    client: FlaskClient, timestamp: str
) -> None:
    response = client.post("/v1/events", json=event_body(timestamp=timestamp), headers=AUTH)
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "timestamp" and "range" in error["message"]


@pytest.mark.parametrize("timestamp", OVERFLOWING)
def test_a_timestamp_that_overflows_spoils_only_its_own_batch_item(
    client: FlaskClient, redis_client: redis.Redis, timestamp: str
) -> None:
    good = event_body()
    items = [good, event_body(timestamp=timestamp)]
    response = client.post("/v1/events/batch", json={"events": items}, headers=AUTH)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid"]
    assert results[1]["errors"][0]["field"] == "timestamp"
    [(_, fields)] = redis_client.xrange("events:ingest")
    assert orjson.loads(fields[b"event"])["event_id"] == good["event_id"]


@pytest.mark.parametrize("timestamp", OVERFLOWING)
def test_a_timestamp_that_overflows_is_a_422_on_the_screen_endpoint(
    client: FlaskClient, timestamp: str
) -> None:
    response = client.post("/v1/screen", json=event_body(timestamp=timestamp), headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "timestamp"


@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH + 1, 200, 253])
def test_metadata_nested_past_the_limit_is_a_422_naming_the_limit(
    client: FlaskClient, redis_client: redis.Redis, depth: int
) -> None:
    response = client.post("/v1/events", json=event_body(metadata=nested(depth)), headers=AUTH)
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "metadata"
    assert f"more than {MAX_METADATA_DEPTH} levels" in error["message"]
    assert redis_client.xlen("events:ingest") == 0


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_metadata_numbers_beyond_64_bits_are_refused_not_rounded(
    client: FlaskClient, number: int
) -> None:
    body = orjson.dumps(event_body(metadata={"big": 1})).replace(
        b'"big":1', f'"big":{number}'.encode()
    )
    response = client.post(
        "/v1/events", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "metadata" and "64 bits" in error["message"]


def test_metadata_integers_within_64_bits_are_kept_exact(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    values = {"u64": 2**64 - 1, "i64": -(2**63), "float": 0.5}
    response = client.post("/v1/events", json=event_body(metadata=values), headers=AUTH)
    assert response.status_code == 202
    [(_, fields)] = redis_client.xrange("events:ingest")
    assert orjson.loads(fields[b"event"])["metadata"] == values


def test_openapi_document_describes_the_screen_endpoint(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    screen = document["paths"]["/v1/screen"]["post"]
    assert {"200", "422", "502", "503", "504"} <= set(screen["responses"])
    body = screen["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ScreenTexts"} in body["oneOf"]
    assert {"$ref": "#/components/schemas/Event"} in body["oneOf"]
    assert "ScreenResponse" in document["components"]["schemas"]
