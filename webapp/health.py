"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
import redis
import structlog
from flask import Response

from core.errors import StoreUnavailable
from webapp.services import Services

log = structlog.get_logger(__name__)


def _answer(body: dict[str, object], status: int) -> Response:
    """A small JSON probe answer."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


class HealthViews:
    """The probes (routed by webapp.routes), bound to this process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def healthz(self) -> Response:
        """The process is alive and serving requests."""
        return _answer({"status": "ok"}, 200)

    def readyz(self) -> Response:
        """Ready when Redis takes writes (what the front door does with every event) and the
        backlog is under its high-water mark."""
        services = self.services
        try:
            services.client.set(services.keys.readiness_probe, "1", px=10_000)
            level = services.backlog.level()
        except redis.ResponseError as exc:
            # Answering, but refusing writes: at its memory ceiling, or a read-only replica.
            log.warning("not_ready", error=str(exc)[:200])
            return _answer({"status": "unavailable", "reason": "redis refuses writes"}, 503)
        except (redis.RedisError, StoreUnavailable) as exc:
            # Where Redis lives is for the logs, not for whoever can reach the probe.
            log.warning("not_ready", error=str(exc)[:200])
            return _answer({"status": "unavailable", "reason": "redis unreachable"}, 503)
        body = {"backlog": level.total, "threshold": services.backlog.threshold}
        if services.backlog.overloaded(level):
            return _answer({"status": "overloaded", **body}, 503)
        return _answer({"status": "ready", **body}, 200)
