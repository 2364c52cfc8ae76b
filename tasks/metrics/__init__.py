"""What the workers export to Prometheus: the instruments each process records into, the
collectors that read state from Redis at scrape time, and the host's exporter.

`tasks.metrics.pipeline` (the ledger, backlog and queue lengths) reads through the worker's
runtime, which itself records into the instruments here, so it is imported from its module.
"""

from tasks.metrics.archive_lag import ArchiveLagCollector
from tasks.metrics.exporter import HostCollector, forget_process, serve
from tasks.metrics.instruments import STAGES, BatcherMetrics, ScreeningMetrics

__all__ = [
    "STAGES",
    "ArchiveLagCollector",
    "BatcherMetrics",
    "HostCollector",
    "ScreeningMetrics",
    "forget_process",
    "serve",
]
