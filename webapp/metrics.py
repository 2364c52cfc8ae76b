"""Prometheus metrics of the web process, served at /metrics."""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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


class WebMetrics:
    """The web process's metrics; prometheus-flask-exporter serves them at /metrics.

    Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes every worker write its values to shared
    files, and /metrics sums them, so a scrape sees the whole server, not one worker. The
    exporter's own per-request metrics are replaced by the cheaper ones below, which cost a
    few microseconds a request instead of tens.
    """

    def __init__(self, app: Flask) -> None:
        # One registry per app: tests build many apps in one process.
        self.registry = CollectorRegistry()
        self.exporter = PrometheusMetrics(
            app, registry=self.registry, export_defaults=False, excluded_paths=["^/metrics$"]
        )
        self.requests = _Children(
            Counter(
                "http_requests_total",
                "HTTP requests answered, by endpoint, method and status.",
                ["endpoint", "method", "status"],
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

    def count_rejection(self, reason: str) -> None:
        """Count a request refused as a whole."""
        self.rejected(reason).inc()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request; ingestion endpoints also get the latency histogram."""
        code = str(status)
        self.requests(endpoint, method, code).inc()
        if endpoint.startswith("events.submit"):
            self.latency(endpoint, code).observe(seconds)
