"""The console's pages: the queue, a decision and its receipt, reviews, a user, sign-in.

Each view reads through the same functions as the API's views (core.archive's queries, and
webapp.archive's user_report and record_review), so a page never shows or records anything the
API would not. Pages are Jinja templates with autoescaping on: content is always text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from flask import Response, g, request
from jinja2 import Environment, PackageLoader, StrictUndefined

import core.archive
from core.archive.records import DecisionQuery, ReviewRequest
from core.models import CATEGORIES, Platform
from webapp.archive import database, known_platform, record_review, user_report
from webapp.console import receipts, sessions
from webapp.errors import ApiError, parse
from webapp.services import Services

PAGE_SIZE = 50
CHART_DAYS = 14
WITHIN = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# The filters a queue link carries, in the order the form shows them.
FILTERS = ("platform", "category", "route", "reviewed", "within")
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
EXCERPT = 240


def _when(moment: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else ""


_templates = Environment(
    loader=PackageLoader("webapp.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["when"] = _when
_CATEGORY_NAMES = [c.value for c in CATEGORIES]
_templates.globals.update(categories=_CATEGORY_NAMES, platforms=list(Platform))


def page(template: str, status: int = 200, **context: Any) -> Response:
    """Render a template of the console as an HTML answer."""
    context.setdefault("moderator", g.get("moderator"))
    context.setdefault("csrf", sessions.csrf_token())
    html = _templates.get_template(template).render(**context)
    return Response(html, status=status, mimetype="text/html")


def redirect(location: str) -> Response:
    """A 303 See Other to a page of the console."""
    return Response(status=303, headers={"Location": location})


def wants_json() -> bool:
    """Whether the console's script sent this request (it asks for JSON)."""
    return request.accept_mimetypes.best == "application/json"


class ConsoleViews:
    """The views of the console (routed by webapp.routes), bound to this process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def sign_in_page(self) -> Response:
        """The sign-in form."""
        return page("sign_in.html", error=None, name="")

    def sign_in(self) -> Response:
        """Sign in with one of the tenant's API keys and the name recorded on reviews."""
        key = request.form.get("api_key", "")
        name = request.form.get("moderator", "").strip()
        if not 1 <= len(name) <= 128 or "\x00" in name:
            return page("sign_in.html", 422, error="Give your name (1-128 characters).", name="")
        if sessions.sign_in(self.services.key_ring, key, name) is None:
            return page("sign_in.html", 401, error="That key is not valid.", name=name)
        return redirect("/console/")

    def sign_out(self) -> Response:
        """End the session and go back to the sign-in form."""
        sessions.sign_out()
        return redirect("/console/sign-in")

    def _queue(self) -> tuple[DecisionQuery, dict[str, str], dict[str, Any]]:
        """The queue's query from the filters in the URL, the filters, and the page's data."""
        chosen = {name: request.args.get(name, "") for name in FILTERS}
        if "route" not in request.args:
            chosen["route"] = "high"  # the high-risk queue unless asked otherwise
        fields: dict[str, Any] = {k: v for k, v in chosen.items() if v and k != "within"}
        if chosen["within"] in WITHIN:
            fields["since"] = datetime.now(UTC) - WITHIN[chosen["within"]]
        # Counted over every category, so the counts show where the rest of the queue is.
        counted = parse(
            DecisionQuery, {k: v for k, v in fields.items() if k != "category"}, "invalid filters"
        )
        if request.args.get("cursor"):
            fields["cursor"] = request.args["cursor"]
        query = parse(DecisionQuery, fields | {"limit": PAGE_SIZE}, "invalid filters")
        engine = database(self.services)
        tenant = g.moderator.tenant
        decisions, cursor = core.archive.list_decisions(engine, tenant, query)
        data = {
            "decisions": decisions,
            "counts": core.archive.category_counts(engine, tenant, counted),
            "next_link": f"/console/?{urlencode(chosen | {'cursor': cursor})}" if cursor else None,
            "count_links": {
                c: f"/console/?{urlencode(chosen | {'category': c})}" for c in _CATEGORY_NAMES
            },
            "excerpt": EXCERPT,
        }
        return query, chosen, data

    def queue(self) -> Response:
        """The tenant's queue, newest first: high risk unless the filters say otherwise."""
        query, chosen, data = self._queue()
        live = query.cursor is None  # only the first page refreshes itself
        rows_link = f"/console/rows?{urlencode(chosen)}"
        return page(
            "queue.html",
            filters=chosen,
            rows_link=rows_link if live else None,
            refresh_s=self.services.settings.console_refresh_s,
            **data,
        )

    def rows(self) -> Response:
        """The queue's counts and rows alone, for the page's live refresh."""
        _, _, data = self._queue()
        return page("rows.html", **data)

    def decision(self, platform: str, event_id: str) -> Response:
        """A decision: the content, its category and risk, its receipt and the review form."""
        event = self._event(platform, event_id)
        if event is None:
            return page("missing.html", 404, what=f"{platform}/{event_id}")
        decision = event["decision"] or {}
        propagation = timedelta(seconds=self.services.settings.review_propagation_s)
        return page(
            "decision.html",
            event=event,
            review_link=f"/console/decisions/{quote(platform)}/{quote(event_id)}/review",
            decision=decision,
            segments=receipts.marked_segments(event["content"], receipts.evidence_of(decision)),
            bars=receipts.signal_bars(decision.get("signals") or {}),
            applies_from=event["reviewed_at"] + propagation if event["reviewed_at"] else None,
        )

    def review(self, platform: str, event_id: str) -> Response:
        """Record the moderator's verdict through the API's own review code."""
        body = {
            "label": request.form.get("label", ""),
            "reviewer": g.moderator.name,
            "note": request.form.get("note", "").strip() or None,
        }
        verdict = parse(ReviewRequest, body, "the review has invalid fields")
        platform = known_platform(platform)
        review, published = record_review(
            self.services, g.moderator.tenant, platform, event_id, verdict
        )
        if not wants_json():
            return redirect(f"/console/decisions/{platform}/{event_id}")
        propagation = timedelta(seconds=self.services.settings.review_propagation_s)
        answer = {
            "review": review,
            "published": published is not None,
            "applies_from": review["created_at"] + propagation,
        }
        return Response(orjson.dumps(answer), status=201, mimetype="application/json")

    def user(self, platform: str, user_id: str) -> Response:
        """A user's history: counts by window, posting rate, a chart, decisions and reviews."""
        tenant = g.moderator.tenant
        platform = known_platform(platform)
        try:
            report = user_report(self.services, tenant, platform, user_id)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return page("missing.html", 404, what=f"user {platform}/{user_id}")
        days = core.archive.daily_counts(
            database(self.services),
            tenant,
            platform,
            user_id,
            now=datetime.now(UTC),
            days=CHART_DAYS,
        )
        return page(
            "user.html", report=report, columns=receipts.daily_columns(days), excerpt=EXCERPT
        )

    def asset(self, name: str) -> Response:
        """The console's script or style sheet, from the package."""
        if name not in ASSETS:
            raise ApiError(404, "not_found", "no such asset")
        data = resources.files("webapp.console").joinpath("assets", name).read_bytes()
        response = Response(data, mimetype=ASSETS[name])
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    def _event(self, platform: str, event_id: str) -> dict[str, Any] | None:
        """The tenant's archived event of this identity, or None."""
        if platform not in {p.value for p in Platform} or "\x00" in event_id:
            return None
        return core.archive.find_event(
            database(self.services), g.moderator.tenant, platform, event_id
        )
