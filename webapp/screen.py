"""POST /v1/screen: decisions now, through the synchronous screening queue."""

from __future__ import annotations

import os
from typing import Any

import kombu.exceptions
import orjson
import redis
import structlog
from flask import Blueprint, Response, request
from pydantic import ValidationError

from celeryconfig import SYNC_QUEUE
from core.models import Event, ScreenResponse, ScreenTexts
from webapp.bodies import read_json
from webapp.errors import ApiError, field_errors
from webapp.services import Services

SCREEN_TASK = "tasks.screening.screen_sync"

log = structlog.get_logger(__name__)


def _items(body: Any, limit: int) -> list[dict[str, Any]]:
    """The texts to screen: `{"texts": [...]}` or one event; 422 naming what is wrong."""
    try:
        if isinstance(body, dict) and "texts" in body:
            texts = ScreenTexts.model_validate(body).texts
            if len(texts) > limit:
                raise ApiError(422, "validation_failed", f"at most {limit} texts per request")
            return [{"text": text} for text in texts]
        event = Event.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            422, "validation_failed", 'send {"texts": [...]} or one event', errors=field_errors(exc)
        ) from None
    return [
        {
            "text": event.content,
            "event_id": event.event_id,
            "platform": event.platform.value,
            "user_id": event.user_id,
        }
    ]


def blueprint(services: Services) -> Blueprint:
    """Build the synchronous screening blueprint."""
    bp = Blueprint("screen", __name__)
    settings = services.settings

    @bp.post("/v1/screen")
    def screen() -> Response:
        """Screen texts now; 504 when no worker answers within SCREEN_SYNC_TIMEOUT_S."""
        body = read_json(request, settings.max_decompressed_bytes)
        items = _items(body, settings.screen_sync_max_texts)
        timeout = settings.screen_sync_timeout_s
        # The worker pushes its answer to a list only this request waits on (BLPOP), so the
        # web app needs no Celery result backend and holds no subscription after a timeout.
        reply_key = services.keys.sync_reply(os.urandom(16).hex())
        try:
            # Expiring with the wait: a worker that finds the task later skips it.
            services.celery.send_task(
                SCREEN_TASK, args=[items, reply_key], queue=SYNC_QUEUE, expires=timeout
            )
            reply = services.sync_redis.blpop([reply_key], timeout=timeout)
        except (kombu.exceptions.OperationalError, redis.RedisError, ConnectionError) as exc:
            raise ApiError(
                503, "broker_unavailable", f"cannot reach the task broker: {exc}",
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

    return bp
