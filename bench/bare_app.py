"""The ingestion benchmark's ceiling: a bare Flask endpoint that parses JSON and says 202."""

from __future__ import annotations

import orjson
from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/v1/events")
def accept() -> Response:
    """Parse the body as JSON and answer 202, doing nothing else."""
    event = orjson.loads(request.get_data())
    body = orjson.dumps({"status": "accepted", "event_id": event.get("event_id")})
    return Response(body, status=202, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    """Liveness, so the benchmark knows the server is up."""
    return Response(b'{"status":"ok"}', mimetype="application/json")
