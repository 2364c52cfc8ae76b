"""Operator endpoints: probes, metrics, the OpenAPI document, and what the web process imports."""

from __future__ import annotations

import re
import subprocess
import sys

from flask import Flask
from flask.testing import FlaskClient

from core.models import Event
from tests.factories import AUTH, event_body
from webapp.routes import ROUTES


def test_healthz_needs_no_key_and_says_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_redis_and_backlog(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"
    assert response.get_json()["backlog"] == 0


def test_metrics_count_events_by_platform_and_outcome(client: FlaskClient) -> None:
    body = event_body(platform="reddit")
    client.post("/v1/events", json=body, headers=AUTH)
    client.post("/v1/events", json=body, headers=AUTH)
    client.post("/v1/events", json=event_body(content=" "), headers=AUTH)
    client.post("/v1/events", json=event_body())  # no key
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ingest_events_total{outcome="accepted",platform="reddit"} 1.0' in text
    assert 'ingest_events_total{outcome="duplicate",platform="reddit"} 1.0' in text
    assert 'ingest_events_total{outcome="invalid",platform="discord"} 1.0' in text
    assert 'ingest_rejected_requests_total{reason="unauthorized"} 1.0' in text
    assert "ingest_backlog_events 1.0" in text
    assert 'ingest_latency_seconds_count{endpoint="events.submit_event",status="202"} 1.0' in text


def test_request_metrics_count_and_time_every_answer_but_the_scrapes(
    client: FlaskClient,
) -> None:
    client.post("/v1/events", json=event_body(), headers=AUTH)
    client.post("/v1/events", json=event_body())  # no key
    client.get("/healthz")
    client.get("/metrics")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'flask_http_request_total{method="POST",status="202"} 1.0' in text
    assert 'flask_http_request_total{method="POST",status="401"} 1.0' in text
    assert 'flask_http_request_total{method="GET",status="200"} 1.0' in text  # /healthz only
    duration = 'flask_http_request_duration_seconds_count{endpoint="%s",method="%s",status="%s"}'
    assert duration % ("events.submit_event", "POST", "202") + " 1.0" in text
    assert duration % ("health.healthz", "GET", "200") + " 1.0" in text
    assert "flask_http_request_exceptions_total" in text
    assert 'flask_exporter_info{version="' in text


def test_openapi_document_is_generated_from_the_models(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/v1/events",
        "/v1/events/batch",
        "/v1/events/{platform}/{event_id}",
    }
    event_schema = document["components"]["schemas"]["Event"]
    assert set(event_schema["properties"]) == set(Event.model_fields)
    assert event_schema["properties"]["event_id"]["pattern"] == "^[A-Za-z0-9._:\\-]{1,128}$"
    assert event_schema["additionalProperties"] is False
    responses = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"202", "200", "400", "401", "409", "413", "415", "422", "429", "503"} <= set(responses)


def test_the_url_map_holds_exactly_the_operations_the_openapi_document_describes_and_the_console(
    app: Flask,
) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    described = {
        (method.upper(), path, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    mapped = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    console = {
        (method, path, endpoint) for method, path, endpoint in mapped if "console" in endpoint
    }
    assert mapped - console == described
    assert {endpoint for *_, endpoint in console} == {r.endpoint for r in ROUTES if r.console}


def test_only_operations_the_document_marks_public_answer_without_a_key(
    client: FlaskClient,
) -> None:
    document = client.get("/openapi.json").get_json()
    for path, item in document["paths"].items():
        url = re.sub(r"{\w+}", "x", path)
        for method, operation in item.items():
            status = client.open(url, method=method.upper()).status_code
            assert (status != 401) == (operation.get("security") == []), (method, path, status)


def test_importing_and_serving_the_web_app_loads_no_torch_and_no_celery_until_a_sync_screen() -> (
    None
):
    script = """
import os, sys
os.environ.update(REDIS_URL="redis://127.0.0.1:1/0", API_KEYS="k")
import webapp.wsgi
client = webapp.wsgi.app.test_client()
client.get("/healthz"); client.get("/openapi.json"); client.get("/metrics")
client.post("/v1/events", json={}, headers={"X-API-Key": "k"})
names = ("torch", "sentence_transformers", "transformers", "onnxruntime", "faiss",
         "celery", "kombu", "billiard", "amqp", "opentelemetry.instrumentation.celery")
heavy = sorted(m for m in names if m in sys.modules)
print(",".join(heavy) or "none")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "none"


def test_the_ingest_routes_load_no_archive_and_no_span_instrumentation_until_they_are_used() -> (
    None
):
    script = """
import os, sys
os.environ.update(REDIS_URL="redis://127.0.0.1:1/0", API_KEYS="k",
                  DATABASE_URL="postgresql://postgres@127.0.0.1:1/screening")
import webapp.wsgi
client = webapp.wsgi.app.test_client()
client.get("/healthz"); client.get("/openapi.json"); client.get("/metrics")
client.post("/v1/events", json={}, headers={"X-API-Key": "k"})
client.post("/v1/events/batch", json={"events": [{}]}, headers={"X-API-Key": "k"})
# SQLAlchemy and the driver, and the span instrumentation of a process that records no span.
names = ("sqlalchemy", "psycopg", "alembic", "opentelemetry.instrumentation.flask",
         "opentelemetry.instrumentation.wsgi")
print("before:", ",".join(sorted(m for m in names if m in sys.modules)) or "none")
status = client.get("/v1/decisions", headers={"X-API-Key": "k"}).status_code
print("after:", status, "sqlalchemy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith(("before:", "after:"))]
    assert lines == ["before: none", "after: 503 True"]  # the archive loads on first use


def test_a_web_worker_leaves_what_it_loaded_at_start_out_of_the_collectors_generations() -> None:
    script = """
import gc, os
os.environ.update(REDIS_URL="redis://127.0.0.1:1/0", API_KEYS="k")
import webapp.wsgi
print("frozen:", gc.get_freeze_count())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    [line] = [line for line in out.stdout.splitlines() if line.startswith("frozen:")]
    assert int(line.split()[1]) > 50_000  # the modules, the app and its models
