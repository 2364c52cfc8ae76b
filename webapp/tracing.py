"""Tracing of the web app: OpenTelemetry's Flask instrumentation around every request, or, when
the process records no span, only the request's trace context.

The tracer provider itself is installed by the process's entry point (webapp.wsgi, through
core.telemetry.configure_tracing), which decides whether spans are recorded and exported.
Without an exporter it samples nothing, and the instrumentation would build a server span per
request (its attributes read from the whole environ) only to drop it: about 140 µs of the 890
µs of web worker CPU of a POST /v1/events under gunicorn (py-spy, `make bench-ingest` load);
the context alone costs 15 µs. `TraceContext` gives each request what such a dropped span left
behind, its trace context (the caller's trace, or a new one), so stream entries still carry a
traceparent that logs and the archive are joined on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from opentelemetry import context

from core.telemetry import records_nothing, unrecorded_context
from webapp.frontdoor import FrontDoor

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Probes and scrapes come every few seconds and say nothing about a request's path.
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"
_UNTRACED_PATHS = frozenset(("/healthz", "/readyz", "/metrics"))


class TraceContext:
    """WSGI middleware: run each request in its trace's context, without a span object."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[Any]:
        """Attach the request's context (continuing the caller's traceparent) around the app."""
        if environ.get("PATH_INFO") in _UNTRACED_PATHS:
            return self.app(environ, start_response)
        token = context.attach(unrecorded_context(environ.get("HTTP_TRACEPARENT")))
        try:
            return self.app(environ, start_response)
        finally:
            context.detach(token)


def instrument(app: Flask, front_door: Callable[[WSGIApplication], FrontDoor]) -> None:
    """Give each request of `app` its trace: a server span continuing the caller's trace, or
    only its context when the process records no span. `front_door` puts webapp.frontdoor's
    lane in front of the (instrumented) Flask app; its requests get the same trace."""
    if records_nothing():
        app.wsgi_app = TraceContext(front_door(app.wsgi_app))  # type: ignore[method-assign]
        return
    # Imported only where spans are recorded: the instrumentation and what it loads (the WSGI
    # instrumentation, semantic conventions) are about 2 MB of a worker's memory.
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    FlaskInstrumentor().instrument_app(app, excluded_urls=UNTRACED_URLS)  # type: ignore[no-untyped-call]
    # The lane's requests never reach Flask's hooks, where that instrumentation starts its
    # span: the WSGI instrumentation gives them theirs ("POST /v1/events", SERVER).
    door = front_door(app.wsgi_app)
    traced = OpenTelemetryMiddleware(door.serve)

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The middleware ends its span, and detaches its context, when the answer's iterable
        # is closed; a client that never reads the body would leave it current. The lane's
        # body is complete when its view returns, so it is iterated here, as Flask's teardown
        # ends the Flask instrumentation's span before the answer leaves.
        return list(traced(environ, start_response))

    door.serve = serve
    app.wsgi_app = door  # type: ignore[method-assign]
