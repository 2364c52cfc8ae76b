"""POST /v1/screen: decisions now, through the synchronous screening queue."""

from __future__ import annotations

import math
import os
from typing import Any

import orjson
import redis
import structlog
from flask import Response, g, request

from core.models import Event, ScreenResponse, ScreenTexts
from webapp.access import charge
from webapp.bodies import read_json
from webapp.errors import ApiError, parse
from webapp.services import Services

SCREEN_TASK = "tasks.screening.screen_sync"

log = structlog.get_logger(__name__)
_INVALID = 'send {"texts": [...]} or one event'


def _items(body: Any, limit: int, tenant: str) -> list[dict[str, Any]]:
    """The texts to screen: `{"texts": [...]}` or one event; 422 naming what is wrong."""
    if isinstance(body, dict) and "texts" in body:
        texts = parse(ScreenTexts, body, _INVALID).texts
        if len(texts) > limit:
            raise ApiError(422, "validation_failed", f"at most {limit} texts per request")
        return [{"text": text, "tenant": tenant} for text in texts]
    event = parse(Event, body, _INVALID)
    return [
        {
            "text": event.content,
            "event_id": event.event_id,
            "platform": event.platform.value,
            "user_id": event.user_id,
            "tenant": tenant,
        }
    ]


class ScreenViews:
    """The view of POST /v1/screen (routed by webapp.routes), bound to this process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def screen(self) -> Response:
        """Screen texts now; 504 when no worker answers within SCREEN_SYNC_TIMEOUT_S."""
        services = self.services
        settings = services.settings
        body = read_json(request.environ, settings.max_body_bytes, settings.max_decompressed_bytes)
        items = _items(body, settings.screen_sync_max_texts, g.tenant)
        charge(services, g.tenant, len(items) - 1, paid=1)  # each text counts; one is paid
        timeout = settings.screen_sync_timeout_s
        # The texts wait in a Redis key that expires with the request, and the task carries only
        # its token, so the broker and Flower never hold them. The worker pushes its answer to a
        # list only this request waits on (BLPOP): no Celery result backend, and nothing held
        # after a timeout.
        token = os.urandom(16).hex()
        keys = services.keys
        # Imported on first use: a web worker that only ingests never loads Celery or kombu.
        import kombu.exceptions

        from celeryconfig import SYNC_QUEUE

        try:
            services.client.set(
                keys.sync_request(token), orjson.dumps(items), ex=math.ceil(timeout) + 1
            )
            # Expiring with the wait: a worker that finds the task later skips it.
            services.celery.send_task(SCREEN_TASK, args=[token], queue=SYNC_QUEUE, expires=timeout)
            reply = services.sync_redis.blpop([keys.sync_reply(token)], timeout=timeout)
        except (kombu.exceptions.OperationalError, redis.RedisError, ConnectionError) as exc:
            log.warning("sync_broker_unavailable", error=str(exc))  # where it is: logs only
            raise ApiError(
                503, "broker_unavailable", "cannot reach the task broker; retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None  # fmt: skip
        if reply is None:
            raise ApiError(
                504, "screening_timeout", f"no screening worker answered within {timeout:g} s"
            )
        answer = orjson.loads(reply[1])
        if "error" in answer:
            log.warning("sync_screening_failed", error=str(answer["error"])[:300])
            raise ApiError(502, "screening_failed", "the screening worker failed on this input")
        result = ScreenResponse.model_validate(answer)
        return Response(result.model_dump_json(), status=200, mimetype="application/json")
