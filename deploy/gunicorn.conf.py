"""Gunicorn settings for the web app: gevent workers, sized from the environment."""

import os
import shutil
from typing import Any

from prometheus_client import multiprocess

from core.settings import Settings

_settings = Settings()

wsgi_app = "webapp.wsgi:app"
bind = os.environ.get("GUNICORN_BIND", f"{_settings.web_host}:{_settings.web_port}")
workers = _settings.web_workers
worker_class = "gevent"
worker_connections = _settings.web_connections
keepalive = 30
graceful_timeout = 20
timeout = 30
# Our app writes one structured JSON line per request; gunicorn's own access log would repeat it.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


def on_starting(server: object) -> None:
    """Give every worker a clean shared directory for Prometheus' multiprocess files."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server: object, worker: Any) -> None:
    """Drop a dead worker's live gauges from /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
