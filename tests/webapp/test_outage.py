"""Redis going away gives 503 (never 500), and the service recovers by itself when it returns."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from devtools.redis_server import RedisServer
from tests.factories import AUTH, event_body, make_app


def test_redis_outage_gives_503_and_recovery_needs_no_restart(own_redis: RedisServer) -> None:
    client: FlaskClient = make_app(own_redis.url, redis_timeout_s=0.5).test_client()
    before = event_body()
    assert client.post("/v1/events", json=before, headers=AUTH).status_code == 202

    own_redis.kill()
    during = client.post("/v1/events", json=event_body(), headers=AUTH)
    assert during.status_code == 503
    assert during.get_json()["error"] == "store_unavailable"
    assert int(during.headers["Retry-After"]) >= 1
    batch = client.post("/v1/events/batch", json={"events": [event_body()]}, headers=AUTH)
    assert batch.status_code == 503
    lookup = client.get(f"/v1/events/discord/{before['event_id']}", headers=AUTH)
    assert lookup.status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200

    own_redis.start()  # same port, same append-only file
    after = client.post("/v1/events", json=event_body(), headers=AUTH)
    assert after.status_code == 202
    assert client.get("/readyz").status_code == 200
    # The event accepted before the crash survived it (append-only file, fsync always).
    assert client.get(f"/v1/events/discord/{before['event_id']}", headers=AUTH).status_code == 200


def test_answers_during_an_outage_do_not_say_where_redis_lives(own_redis: RedisServer) -> None:
    client: FlaskClient = make_app(own_redis.url, redis_timeout_s=0.5).test_client()
    own_redis.kill()
    readyz = client.get("/readyz")
    screen = client.post("/v1/screen", json={"texts": ["hello"]}, headers=AUTH)
    event = client.post("/v1/events", json=event_body(), headers=AUTH)
    for response, status in ((readyz, 503), (screen, 503), (event, 503)):
        assert response.status_code == status
        body = response.get_data(as_text=True)
        assert str(own_redis.port) not in body and "127.0.0.1" not in body, body
    own_redis.start()


def test_at_the_memory_ceiling_readiness_fails_with_the_front_door_and_both_recover(
    own_redis: RedisServer,
) -> None:
    client: FlaskClient = make_app(own_redis.url, backlog_refresh_s=0.0).test_client()
    assert client.post("/v1/events", json=event_body(), headers=AUTH).status_code == 202
    admin = redis.Redis.from_url(own_redis.url)
    admin.config_set("maxmemory", 1)  # any write now passes the ceiling
    try:
        refused = client.post("/v1/events", json=event_body(), headers=AUTH)
        assert refused.status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["reason"] == "redis refuses writes"
        assert client.get("/healthz").status_code == 200  # alive: nothing to restart
    finally:
        admin.config_set("maxmemory", 0)
    assert client.post("/v1/events", json=event_body(), headers=AUTH).status_code == 202
    assert client.get("/readyz").status_code == 200
