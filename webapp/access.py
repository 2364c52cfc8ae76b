"""Per-request plumbing: request ids, API-key checks, metrics and the access log."""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

import structlog
from flask import Flask, Response, g, request

from core.admission.apikeys import fingerprint
from webapp.errors import ApiError
from webapp.metrics import WebMetrics
from webapp.routes import KEYLESS_ENDPOINTS
from webapp.services import Services

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = structlog.get_logger("webapp.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
METRICS_PATH = "/metrics"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="screening"'}
# Every answer is JSON that may echo what a client chose (a review's reviewer and note): no
# browser may sniff it into something else, run it, or frame it. A page that needs more (the
# moderators' console) sets its own policy, which these defaults leave alone.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)


def request_id_from(environ: WSGIEnvironment) -> str:
    """The client's X-Request-ID when it is 1-128 safe characters, otherwise a new one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def presented_key(environ: WSGIEnvironment) -> str | None:
    """The API key sent in X-API-Key or as a Bearer token, if any."""
    key: str = environ.get("HTTP_X_API_KEY", "")
    if key:
        return key
    authorization: str = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(services: Services, environ: WSGIEnvironment) -> tuple[str, str]:
    """Check the request's API key and its tenant's rate limit (the request counts one event;
    a batch pays for the rest once its size is known); return its tenant and fingerprint."""
    key = presented_key(environ)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send X-API-Key or Authorization: Bearer",
            headers=_CHALLENGE,
        )
    tenant = services.key_ring.tenant_of(key)
    if tenant is None:
        raise ApiError(401, "unauthorized", "invalid API key", headers=_CHALLENGE)
    charge(services, tenant, 1)
    return tenant, fingerprint(key)


def charge(services: Services, tenant: str, events: int, paid: int = 0) -> None:
    """Spend `events` tokens of the tenant's rate limit (after the `paid` ones the request spent
    already); 429 with Retry-After when it is spent."""
    limiter = services.rate_limiter
    if limiter is None or events < 1:
        return
    decision = limiter.take(tenant, events, paid=paid)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"too many events for tenant {tenant!r}: its limit is {limiter.describe()}",
            headers={"Retry-After": str(decision.retry_after_s)},
        )


def record(
    metrics: WebMetrics,
    *,
    method: str,
    path: str,
    endpoint: str,
    status: int,
    seconds: float,
    request_id: str,
    **fields: object,
) -> None:
    """Count and time an answered request (a scrape is not one of the service's) and write
    its access log line."""
    if path != METRICS_PATH:
        metrics.observe_request(method, endpoint, status, seconds)
    log.info(
        "request",
        request_id=request_id,
        method=method,
        path=path,
        status=status,
        duration_ms=round(seconds * 1000, 3),
        **fields,
    )


def install(app: Flask, services: Services, metrics: WebMetrics) -> None:
    """Attach request ids, authentication, metrics and access logging."""

    @app.before_request
    def _start() -> None:
        # One lookup of each context-local proxy: each access through a proxy costs a
        # context-variable lookup, and this runs on every request.
        context, req = g._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
        context.started = time.perf_counter()
        environ = req.environ
        context.request_id = request_id_from(environ)
        # werkzeug's router and `request.path` strip leading slashes (whatever merge_slashes
        # says), so `//v1/events` would reach the events view: it is an unknown path.
        if environ.get("PATH_INFO", "").startswith("//"):
            raise ApiError(404, "not_found", "the requested URL was not found on the server")
        # Unknown paths and methods get their 404/405 rather than a 401.
        if req.routing_exception is None and req.endpoint not in KEYLESS_ENDPOINTS:
            context.tenant, context.key_id = authenticate(services, environ)

    @app.after_request
    def _finish(response: Response) -> Response:
        context, req = g._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
        request_id = context.get("request_id", "")
        headers = response.headers
        headers["X-Request-ID"] = request_id
        for name, value in SECURITY_HEADERS:
            headers.setdefault(name, value)
        seconds = time.perf_counter() - context.get("started", time.perf_counter())
        context.metered = True
        record(
            metrics,
            method=req.method,
            path=req.path,
            endpoint=req.endpoint or "unmatched",
            status=response.status_code,
            seconds=seconds,
            request_id=request_id,
            key_id=context.get("key_id"),
            tenant=context.get("tenant"),
            events=context.get("event_count"),
        )
        return response

    @app.teardown_request
    def _failed(exc: BaseException | None) -> None:
        # Only an exception no error handler answered reaches here (webapp.errors answers
        # every Exception); it is counted as the exporter counted it, once.
        if exc is None or request.path == METRICS_PATH:
            return
        metrics.count_exception(request.method)
        if not g.get("metered"):
            seconds = time.perf_counter() - g.get("started", time.perf_counter())
            metrics.observe_request(request.method, request.endpoint or "unmatched", 500, seconds)
