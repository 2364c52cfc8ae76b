"""Tracing of the web app: OpenTelemetry's Flask instrumentation around every request.

The tracer provider itself is installed by the process's entry point (webapp.wsgi, through
core.telemetry.configure_tracing), which decides whether spans are recorded and exported.
"""

from __future__ import annotations

from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor

# Probes and scrapes come every few seconds and say nothing about a request's path.
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"


def instrument(app: Flask) -> None:
    """Open a server span around each request of `app` (continuing the caller's trace)."""
    FlaskInstrumentor().instrument_app(app, excluded_urls=UNTRACED_URLS)  # type: ignore[no-untyped-call]
