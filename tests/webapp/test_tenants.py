"""Keys belong to tenants: one tenant's key never sees, blocks or changes another's events."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

from tests.factories import event_body, make_app

ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}
BARE = {"X-API-Key": "bare-key"}


@pytest.fixture()
def client(redis_url: str) -> FlaskClient:
    """An app with two tenants' keys and one bare key (the default tenant)."""
    keys = ["acme:acme-key", "globex:globex-key", "bare-key"]
    return make_app(redis_url, api_keys=keys).test_client()


def test_another_tenant_cannot_claim_an_event_id_first(client: FlaskClient) -> None:
    body = event_body()
    squatter = {**body, "content": "claimed before its owner sent it"}
    assert client.post("/v1/events", json=squatter, headers=GLOBEX).status_code == 202
    owner = client.post("/v1/events", json=body, headers=ACME)
    assert owner.status_code == 202 and owner.get_json()["status"] == "accepted"
    again = client.post("/v1/events", json=body, headers=ACME)
    assert (
        again.status_code == 200 and again.get_json()["stream_id"] == owner.get_json()["stream_id"]
    )


def test_lookups_see_only_the_callers_tenant(client: FlaskClient) -> None:
    body = event_body()
    stream_id = client.post("/v1/events", json=body, headers=ACME).get_json()["stream_id"]
    path = f"/v1/events/discord/{body['event_id']}"
    mine = client.get(path, headers=ACME)
    assert mine.status_code == 200
    assert mine.get_json()["stream_id"] == stream_id and mine.get_json()["tenant"] == "acme"
    assert client.get(path, headers=GLOBEX).status_code == 404
    assert client.get(path, headers=BARE).status_code == 404


def test_a_batch_is_deduplicated_within_its_tenant_only(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    items = [event_body(), event_body()]
    for headers in (ACME, GLOBEX, BARE):
        response = client.post("/v1/events/batch", json={"events": items}, headers=headers)
        assert response.get_json()["counts"] == {"accepted": 2}
    tenants = [fields[b"tenant"] for _, fields in redis_client.xrange("events:ingest")]
    assert tenants == [b"acme"] * 2 + [b"globex"] * 2 + [b"default"] * 2


def _batch(size: int) -> dict[str, list[dict[str, object]]]:
    """A batch body of `size` fresh events."""
    return {"events": [event_body() for _ in range(size)]}


def test_one_tenants_flood_is_refused_at_its_share_while_another_tenant_is_admitted(
    redis_url: str,
) -> None:
    keys = ["alpha:alpha-key", "beta:beta-key"]
    client = make_app(redis_url, api_keys=keys, backlog_max=1000).test_client()
    beta, alpha = {"X-API-Key": "beta-key"}, {"X-API-Key": "alpha-key"}
    first = client.post("/v1/events/batch", json=_batch(500), headers=beta)
    assert first.status_code == 200 and first.get_json()["counts"] == {"accepted": 500}
    second = client.post("/v1/events/batch", json=_batch(500), headers=beta)
    assert second.status_code == 503 and int(second.headers["Retry-After"]) >= 1
    message = second.get_json()["message"]
    assert "'beta'" in message and "its share of the queue is 400" in message
    assert client.post("/v1/events", json=event_body(), headers=alpha).status_code == 202
    assert client.get("/readyz").status_code == 200  # the queue as a whole is not full


def test_rate_limits_count_events_and_each_tenant_has_its_own(redis_url: str) -> None:
    keys = ["alpha:alpha-key", "beta:beta-key"]
    client = make_app(
        redis_url, api_keys=keys, backlog_max=1000, rate_limit_per_s=5, rate_limit_burst=100
    ).test_client()
    beta, alpha = {"X-API-Key": "beta-key"}, {"X-API-Key": "alpha-key"}
    first = client.post("/v1/events/batch", json=_batch(500), headers=beta)
    assert first.status_code == 200  # from a full bucket, leaving it 400 events in debt
    refused = client.post("/v1/events/batch", json=_batch(500), headers=beta)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 60  # 400 events at 5 per second
    assert (
        "'beta'" in refused.get_json()["message"] and "5 events/s" in refused.get_json()["message"]
    )
    over = client.post("/v1/events/batch", json=_batch(101), headers=alpha)
    assert over.status_code == 200  # alpha's own bucket is full: 101 events pass from it
    assert client.post("/v1/events", json=event_body(), headers=alpha).status_code == 429
