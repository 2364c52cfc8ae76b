"""Prometheus metrics of the web process, served at /metrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_flask_exporter import PrometheusMetrics

from core.errors import CoreError
from webapp.archive_metrics import ArchiveLagCollector
from webapp.services import Services

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


class LedgerCollector:
    """The outcome ledger, read from Redis in one transaction at each scrape."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """Yield the outcome counters, the in-flight gauge and whether they balance."""
        try:
            ledger = self.services.consumer.ledger()
        except CoreError:
            return
        outcomes = CounterMetricFamily(
            "pipeline_events",
            "Events by outcome: accepted, high, low, dead_lettered.",
            labels=["outcome"],
        )
        for outcome, value in (
            ("accepted", ledger.accepted),
            ("high", ledger.high),
            ("low", ledger.low),
            ("dead_lettered", ledger.dead_lettered),
        ):
            outcomes.add_metric([outcome], value)
        yield outcomes
        yield GaugeMetricFamily(
            "pipeline_in_flight_events", "Accepted events not yet decided.", value=ledger.in_flight
        )
        yield GaugeMetricFamily(
            "pipeline_ledger_balanced",
            "1 when accepted = high + low + dead_lettered + in flight.",
            value=1.0 if ledger.balanced else 0.0,
        )


class _Exporter(PrometheusMetrics):  # type: ignore[misc]  # the exporter is untyped
    """prometheus-flask-exporter, plus collectors that must not go through multiprocess files."""

    def __init__(self, app: Flask, extra: CollectorRegistry, **kwargs: Any) -> None:
        self.extra = extra
        super().__init__(app, **kwargs)

    def generate_metrics(
        self, accept_header: str | None = None, names: Any = None
    ) -> tuple[str, str]:
        """The exporter's metrics followed by the extra registry's, in the same format."""
        text, content_type = super().generate_metrics(accept_header, names)
        encoder, _ = choose_encoder(accept_header or "")
        extra = encoder(self.extra).decode()
        eof = "# EOF\n"
        if text.endswith(eof):  # OpenMetrics ends with EOF: the extra lines go before it
            return text[: -len(eof)] + extra, content_type
        return text + extra, content_type


class WebMetrics:
    """The web process's metrics; prometheus-flask-exporter serves them at /metrics.

    Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes every worker write its values to shared
    files, and /metrics sums them, so a scrape sees the whole server, not one worker. The
    exporter's own per-request metrics are replaced by the cheaper ones below, which cost a
    few microseconds a request instead of tens.
    """

    def __init__(self, app: Flask, services: Services) -> None:
        # One registry per app: tests build many apps in one process.
        self.registry = CollectorRegistry()
        ledger = CollectorRegistry()
        ledger.register(LedgerCollector(services))
        if services.settings.database_url:
            ledger.register(ArchiveLagCollector(services.archive_feed))
        self.exporter = _Exporter(
            app,
            ledger,
            registry=self.registry,
            export_defaults=False,
            excluded_paths=["^/metrics$"],
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
