"""The HTTP methods the service knows; a request with any other is answered before Flask.

A method is whatever token a client sends, so a label, log field or span name taken from it is
unbounded: each `XQWERTY /healthz` would add a metric series. RFC 9110 (15.6.2) answers a method
the server does not recognise with 501 Not Implemented, which is what this middleware does,
with the API's JSON error body; the app, its metrics and its spans only ever see known methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import structlog

from webapp.access import SECURITY_HEADERS, request_id_from
from webapp.errors import error_body
from webapp.metrics import WebMetrics

log = structlog.get_logger("webapp.access")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REJECTION = "method_not_implemented"


class KnownMethods:
    """WSGI middleware: 501 with a JSON body for any method outside KNOWN_METHODS."""

    def __init__(self, app: Callable[..., Iterable[bytes]], metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The one series these answers count in exists from the start, so no request adds one.
        metrics.declare_rejection(REJECTION)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Pass known methods on; answer the others here."""
        method = environ.get("REQUEST_METHOD", "")
        if method in KNOWN_METHODS:
            return self.app(environ, start_response)
        request_id = request_id_from(environ)
        body = error_body(
            REJECTION,
            f"this service does not implement the method; use one of "
            f"{', '.join(sorted(KNOWN_METHODS))}",
            request_id,
        )
        self.metrics.count_rejection(REJECTION)
        log.info(
            "request",
            request_id=request_id,
            method=method[:20],
            path=environ.get("PATH_INFO", "")[:200],
            status=501,
        )
        start_response(
            "501 Not Implemented",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", request_id),
                ("Allow", ", ".join(sorted(KNOWN_METHODS))),
                *SECURITY_HEADERS,
            ],
        )
        return [body]
