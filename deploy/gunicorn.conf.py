"""Gunicorn settings for the web app: gevent workers, sized from the environment."""

import os
import shutil
from typing import Any

import orjson
from gunicorn import util
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


def _json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Write one of gunicorn's own error answers with the API's JSON error body.

    Requests gunicorn refuses before the app sees them (a request line or headers too long, a
    malformed Content-Length) are answered by `gunicorn.util.write_error`, whose body is an
    HTML page; gunicorn 27 has no setting or hook for it, so this replaces that function (its
    workers call it through the module at the moment of the error).
    """
    body = orjson.dumps(
        {"error": reason.lower().replace(" ", "_"), "message": f"{reason}: {mesg}"[:300]}
    )
    # The web app's SECURITY_HEADERS (webapp.access), spelled out: importing the app here
    # would load it into the master process (a test keeps the two equal).
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _json_error


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
