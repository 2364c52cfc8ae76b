"""The front door's lane: POST /v1/events and POST /v1/events/batch answered in plain WSGI.

Every other request goes on to Flask. The two ingest routes are the service's hot path, and
Flask's per-request machinery was most of what they cost beyond the bare server: pushing the
request and app contexts, werkzeug's router walking every rule, building a Request and a
Response object with their Headers, and the before/after hooks reaching through context-local
proxies. Under `make bench-ingest` load (py-spy on one gunicorn + gevent worker) Flask and
werkzeug took 167 µs of the 700 µs of worker CPU of a POST /v1/events; the lane does the same
work (request id, API key and rate limit, body limits, validation, backpressure, the dedup +
XADD script, metrics, the access log, the security headers) on the WSGI environ directly.

Flask still holds both rules in its URL map, without a view: a request with another method
(PUT, HEAD, OPTIONS) is answered by Flask as before (405, or the allowed methods).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from webapp.access import SECURITY_HEADERS, authenticate, record, request_id_from
from webapp.errors import answer_for, error_body
from webapp.metrics import WebMetrics
from webapp.routes import LANE_ROUTES
from webapp.services import Services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


@dataclass(slots=True)
class Submission:
    """One authenticated request on the lane: its environ, tenant and request id, and how many
    events it offered (for the access log), once known."""

    environ: WSGIEnvironment
    tenant: str
    request_id: str
    events: int | None = None


View = Callable[[Submission], tuple[int, bytes]]


class FrontDoor:
    """WSGI middleware: answers POST on the lane's routes, hands every other request on."""

    def __init__(
        self,
        app: WSGIApplication,
        views: Any,
        services: Services,
        metrics: WebMetrics,
    ) -> None:
        self.app = app
        self.services = services
        self.metrics = metrics
        self.retry_after_s = services.settings.retry_after_s
        # By path: (endpoint, view), the endpoint being the route's name in metrics and logs.
        self.routes: dict[str, tuple[str, View]] = {
            route.path: (route.endpoint, getattr(views, route.view)) for route in LANE_ROUTES
        }
        self.serve: WSGIApplication = self._serve

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a POST on the lane's routes here; pass anything else on to the app."""
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") in self.routes:
            return self.serve(environ, start_response)
        return self.app(environ, start_response)

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate, run the route's view and answer, with metrics and the access log."""
        started = time.perf_counter()
        path = environ["PATH_INFO"]
        endpoint, view = self.routes[path]
        request_id = request_id_from(environ)
        tenant = key_id = None
        submission: Submission | None = None
        extra: dict[str, str] = {}
        try:
            tenant, key_id = authenticate(self.services, environ)
            submission = Submission(environ, tenant, request_id)
            status, body = view(submission)
        except Exception as exc:  # every failure is answered, as Flask's handlers answer it
            answer = answer_for(exc, self.retry_after_s)
            self.metrics.count_rejection(answer.code)
            status, extra = answer.status, answer.headers
            body = error_body(answer.code, answer.message, request_id, answer.errors)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *extra.items(),
            ("X-Request-ID", request_id),
            *SECURITY_HEADERS,
        ]
        start_response(_STATUS_LINES[status], headers)
        record(
            self.metrics,
            method="POST",
            path=path,
            endpoint=endpoint,
            status=status,
            seconds=time.perf_counter() - started,
            request_id=request_id,
            key_id=key_id,
            tenant=tenant,
            events=submission.events if submission is not None else None,
        )
        return [body]
