"""The archive's endpoints: search decisions, a user's history, and moderator reviews."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from flask import Response, g, request

import core.archive
from core.archive.errors import NotDecided, UnknownEvent
from core.archive.records import DecisionQuery, ReviewRequest
from core.errors import StoreUnavailable
from core.models import Platform
from core.stream import Label
from webapp.bodies import read_json
from webapp.errors import ApiError, parse
from webapp.services import Services

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = structlog.get_logger(__name__)
_PLATFORMS = frozenset(p.value for p in Platform)


def tenant() -> str:
    """The tenant of the request's API key (every archive endpoint needs a key)."""
    return str(g.tenant)


def _json(body: Any, status: int = 200) -> Response:
    """A JSON response (datetimes in RFC 3339)."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def known_platform(platform: str) -> str:
    """A known platform of a path, else 404."""
    if platform not in _PLATFORMS:
        raise ApiError(404, "not_found", f"unknown platform {platform!r}")
    return platform


class ArchiveViews:
    """The views of the archive (routed by webapp.routes), bound to this process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def list_decisions(self) -> Response:
        """A page of archived decisions, newest first, filtered by the query string."""
        query = parse(DecisionQuery, request.args.to_dict(flat=True), "invalid query parameters")
        decisions, cursor = core.archive.list_decisions(database(self.services), tenant(), query)
        return _json({"decisions": decisions, "next_cursor": cursor})

    def user(self, platform: str, user_id: str) -> Response:
        """A user's history: counts by window, latest decisions, reviews, posting rate."""
        return _json(user_report(self.services, tenant(), known_platform(platform), user_id))

    def review(self, platform: str, event_id: str) -> Response:
        """Record a moderator's verdict; its text becomes a live example on every worker."""
        platform = known_platform(platform)
        settings = self.services.settings
        body = read_json(request.environ, settings.max_body_bytes, settings.max_decompressed_bytes)
        verdict = parse(ReviewRequest, body, "the review has invalid fields")
        review, _ = record_review(self.services, tenant(), platform, event_id, verdict)
        return _json(review, 201)


def database(services: Services) -> Engine:
    """The archive database, or 503 when this deployment has none."""
    engine = services.archive
    if engine is None:
        raise ApiError(503, "archive_unavailable", "no archive is configured (DATABASE_URL)")
    return engine


def user_report(services: Services, tenant: str, platform: str, user_id: str) -> dict[str, Any]:
    """A user's history with the live posting rate (UserHistoryReport shape), or 404."""
    if not 1 <= len(user_id) <= 128 or "\x00" in user_id:  # never an archived user id
        raise ApiError(404, "not_found", "no such user")
    report = core.archive.user_history(
        database(services), tenant, platform, user_id, datetime.now(UTC)
    )
    if report is None:
        raise ApiError(404, "not_found", f"no event of user {platform}/{user_id} is archived")
    [(high_risk, posts)] = services.consumer.user_history([(tenant, platform, user_id)])
    report["posting_rate"] = {"posts_last_minute": posts, "high_risk_last_24h": high_risk}
    return report


def record_review(
    services: Services, tenant: str, platform: str, event_id: str, verdict: ReviewRequest
) -> tuple[dict[str, Any], str | None]:
    """Record a verdict and publish it to the screening workers: the review (Review shape) and
    its labels-stream id (None when Redis was unreachable; workers rebuild it on start)."""
    if "\x00" in event_id:  # never an event id (see Event.event_id)
        raise ApiError(404, "not_found", "no such event")
    try:
        review, example = core.archive.add_review(
            database(services),
            tenant,
            platform,
            event_id,
            label=verdict.label,
            reviewer=verdict.reviewer,
            note=verdict.note,
        )
    except UnknownEvent:
        if services.stream.lookup(tenant, Platform(platform), event_id) is None:
            message = f"no event {platform}/{event_id} is known"
            raise ApiError(404, "not_found", message) from None
        raise ApiError(
            409,
            "not_decided",
            f"event {platform}/{event_id} has no archived decision yet; retry once it has",
            headers={"Retry-After": str(services.settings.retry_after_s)},
        ) from None
    except NotDecided as exc:
        raise ApiError(409, "not_decided", str(exc)) from None
    label = Label(example.tenant, example.example_id, example.label.value, example.text)
    try:
        return review, services.labels.publish(label)
    except StoreUnavailable as exc:
        # The review is committed: workers that start later rebuild it from the archive.
        log.warning("label_not_published", review_id=review["id"], error=str(exc)[:200])
        return review, None
