"""The trace each request gives its stream entries when the process exports no spans.

The tests' own processes record every span (tests/conftest.py), so this runs the web app in a
process configured as `make run` and a deployment without an exporter configure it.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import redis

from tests.factories import API_KEY, event_body

SCRIPT = """
import json, sys
from core.settings import Settings
from core.telemetry import configure_tracing
from webapp import create_app
from webapp.tracing import TraceContext

configure_tracing("screening-web", {})  # no OTEL_TRACES_EXPORTER: nothing is sampled
app = create_app(Settings(redis_url=sys.argv[1], api_keys=[sys.argv[2]]))
assert isinstance(app.wsgi_app.app, TraceContext), app.wsgi_app.app
client = app.test_client()
for body, headers in zip(json.loads(sys.argv[3]), json.loads(sys.argv[4])):
    status = client.post("/v1/events", json=body, headers={"X-API-Key": sys.argv[2], **headers})
    assert status.status_code == 202, status.get_json()
"""


def test_without_an_exporter_entries_carry_a_new_trace_or_continue_the_callers(
    redis_url: str, redis_client: redis.Redis
) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    bodies = [event_body(), event_body(), event_body()]
    headers = [{}, {}, {"traceparent": parent}]
    subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            redis_url,
            API_KEY,
            orjson.dumps(bodies).decode(),
            orjson.dumps(headers).decode(),
        ],
        check=True,
    )
    entries = {
        orjson.loads(fields[b"event"])["event_id"]: fields[b"traceparent"].decode()
        for _, fields in redis_client.xrange("events:ingest")
    }
    first, second, continued = (entries[body["event_id"]].split("-") for body in bodies)
    for version, trace_id, span_id, flags in (first, second, continued):
        assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "00")
        assert int(trace_id, 16) and int(span_id, 16)
    assert first[1] != second[1]  # a trace of its own for each request
    assert continued[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert continued[2] != "00f067aa0ba902b7"
