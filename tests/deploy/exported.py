"""The metric names the code exports, found by building each exporter, not from a list.

Dashboards, alerts and the operations guide (docs/operations.md) may name only these. Sources:
the web app's registry (its own instruments and prometheus-flask-exporter's), the workers'
instruments, the pipeline worker's scrape-time collector, Flower's /metrics, and `up`, which
Prometheus itself adds to every scraped target. `defined_in_source` is the cross-check that no
module defining metrics was left out of the sources.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from core.settings import Settings
from tests.factories import ROOT

# Series names each metric type exports, from the family's name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_CONSTRUCTORS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
_FAMILIES = {"CounterMetricFamily", "GaugeMetricFamily", "HistogramMetricFamily"}


def series_names(families: Iterable[Metric]) -> set[str]:
    """Every series name the families can export."""
    names = set()
    for family in families:
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def _web() -> set[str]:
    from webapp import create_app

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", api_keys=["k"]))
    return series_names(app.extensions["web_metrics"].registry.collect())


def _workers() -> set[str]:
    from tasks.metrics import (
        ArchiveLagCollector,
        BatcherMetrics,
        ScreeningMetrics,
    )
    from tasks.metrics.pipeline import PipelineCollector
    from tasks.runtime import Runtime

    registry = CollectorRegistry()
    ScreeningMetrics(gpu_queues=1, registry=registry)
    BatcherMetrics(registry=registry)
    current = Runtime(Settings(redis_url="redis://127.0.0.1:1/0"))
    pipeline = PipelineCollector(current)
    archive = ArchiveLagCollector(current.archive_feed)
    return (
        series_names(registry.collect())
        | series_names(pipeline.describe())
        | series_names(archive.describe())
    )


def _flower() -> set[str]:
    import flower.options  # noqa: F401 - defines the options Flower's metrics read
    from flower.events import get_prometheus_metrics
    from prometheus_client import REGISTRY

    get_prometheus_metrics()
    return {name for name in series_names(REGISTRY.collect()) if name.startswith("flower_")}


@cache
def exported() -> frozenset[str]:
    """Every series name some process of the deployment exports."""
    return frozenset(_web() | _workers() | _flower() | PROMETHEUS_SYNTHETIC)


def defined_in_source() -> set[str]:
    """Names given literally to prometheus_client's constructors anywhere in the product."""
    found = set()
    for package in ("core", "webapp", "tasks"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in _CONSTRUCTORS | _FAMILIES
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.add(node.args[0].value)
    return found


def family_name(series: str) -> str:
    """The family a series name belongs to (a counter's or histogram's base name)."""
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series
