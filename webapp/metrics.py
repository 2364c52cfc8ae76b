"""Prometheus metrics of the web process, served at /metrics by prometheus-flask-exporter.

Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` names a directory every worker writes its values
to, and the exporter's `GunicornInternalPrometheusMetrics` serves /metrics from all of them, so
a scrape sees the whole server, not one worker (deploy/gunicorn.conf.py empties the directory at
start and marks dead workers). In one process (tests, a debugger) the plain `PrometheusMetrics`
serves the app's own registry. Either way the app records the exporter's per-request series
(`flask_http_request_duration_seconds`, `flask_http_request_total`,
`flask_http_request_exceptions_total`, with the exporter's names, labels and help) and the ingest
metrics, through webapp.access.record (Flask's after-request hook and webapp.frontdoor's lane).

The exporter's own per-request hooks are off (`export_defaults=False`): they looked the label
children up with `labels()` on every request, through a dozen attribute lookups on Flask's
request proxy, and cost about 20 µs of each POST /v1/events (py-spy under `make bench-ingest`
load) where a cached child costs 4 µs; the exporter still serves /metrics.

Every label comes from a known set: methods are bounded before Flask sees them
(webapp.methods answers others with 501), endpoints are route names, statuses are the codes the
app answers with, platforms and outcomes are the contract's enums, reasons are error codes.
The ledger and the stream's backlog are exported by the pipeline worker
(tasks.metrics.pipeline), which reads them from Redis at each scrape.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The exporter's request histogram also times /v1/screen, which waits up to its timeout.
REQUEST_BUCKETS = (*LATENCY_BUCKETS, 5.0, 10.0, 30.0)


class _Children:
    """Label children of one metric, looked up once: prometheus_client's labels() is slow."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.cache.get(values)
        if child is None:
            child = self.cache[values] = self.metric.labels(*values)
        return child


def exporter(app: Flask) -> PrometheusMetrics:
    """prometheus-flask-exporter on `app`, in its gunicorn multiprocess mode when configured."""
    options: dict[str, Any] = {"export_defaults": False}
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return GunicornInternalPrometheusMetrics(app, **options)
    # One registry per app: tests build many apps in one process.
    return PrometheusMetrics(app, registry=CollectorRegistry(auto_describe=True), **options)


class WebMetrics:
    """The web process's per-request and ingest metrics."""

    def __init__(self, app: Flask) -> None:
        self.exporter = exporter(app)
        self.registry = self.exporter.registry
        self.exporter.info(
            "flask_exporter_info",
            "Information about the Prometheus Flask exporter",
            version=self.exporter.version,
        )
        self.duration = _Children(
            Histogram(
                "flask_http_request_duration_seconds",
                "Flask HTTP request duration in seconds",
                ["method", "endpoint", "status"],
                buckets=REQUEST_BUCKETS,
                registry=self.registry,
            )
        )
        self.requests = _Children(
            Counter(
                "flask_http_request_total",
                "Total number of HTTP requests",
                ["method", "status"],
                registry=self.registry,
            )
        )
        self.exceptions = _Children(
            Counter(
                "flask_http_request_exceptions_total",
                "Total number of HTTP requests which resulted in an exception",
                ["method", "status"],
                registry=self.registry,
            )
        )
        self.latency = _Children(
            Histogram(
                "ingest_latency_seconds",
                "Time from request start to answer on the ingestion endpoints.",
                ["endpoint", "status"],
                buckets=LATENCY_BUCKETS,
                registry=self.registry,
            )
        )
        self.events = _Children(
            Counter(
                "ingest_events_total",
                "Events offered, by platform and outcome (accepted, duplicate, conflict, invalid).",
                ["platform", "outcome"],
                registry=self.registry,
            )
        )
        self.rejected = _Children(
            Counter(
                "ingest_rejected_requests_total",
                "Requests refused as a whole, by reason.",
                ["reason"],
                registry=self.registry,
            )
        )
        self.backlog = Gauge(
            "ingest_backlog_events",
            "Unprocessed entries of the ingest stream, as last read by a web worker.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def count_events(self, tally: Tally[tuple[str, str]]) -> None:
        """Add a request's (platform, outcome) counts, one increment per distinct pair."""
        for (platform, outcome), n in tally.items():
            self.events(platform, outcome).inc(n)

    def declare_rejection(self, reason: str) -> None:
        """Export a rejection reason's series at zero before the first such request."""
        self.rejected(reason)

    def count_rejection(self, reason: str) -> None:
        """Count a request refused as a whole."""
        self.rejected(reason).inc()

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Count and time an answered request (the ingestion endpoints' latency too)."""
        code = str(status)
        self.duration(method, endpoint, code).observe(seconds)
        self.requests(method, code).inc()
        if endpoint.startswith("events.submit"):
            self.latency(endpoint, code).observe(seconds)

    def count_exception(self, method: str) -> None:
        """Count a request that ended in an exception no error handler answered."""
        self.exceptions(method, "500").inc()
