"""Every HTTP route of the service, declared once in ROUTES.

The table feeds the URL map (`register`), the OpenAPI document (webapp.openapi) and the API-key
check (PUBLIC_ENDPOINTS): a route's method, path, view, request and query models, answers by
status, error statuses, summary and whether it needs a key are written here and nowhere else.
A route's endpoint, `<blueprint>.<view method>`, is also its name in metrics, logs and
dashboards (deploy/grafana matches `archive.*`), so renaming a view renames a series.

Why a table of our own rather than flask-openapi3, spectree or flask-smorest: each of those
builds the document from a decorator that also validates the request. flask-openapi3 and
spectree wrap the view and run pydantic on the body (with their own error bodies) before it;
flask-smorest validates with marshmallow schemas, a second description of the bodies our
pydantic models (core/models.py, core/archive/records.py) already give. Validation has to stay
in the views: the body is first read under size, gzip and UTF-8 limits (webapp.bodies), a batch
validates each item on its own (one result per item, not one 422), the single-event path counts
an `invalid` metric before its 422, and every error body is an ErrorResponse. A library's wrapper
would put per-request work, or a second validation, on POST /v1/events, the front door whose
throughput matters most. The table costs nothing per request: it is read when the app is built
and when the document is first served, and what Flask calls is the view's bound method itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, Flask
from pydantic import BaseModel

from core.archive.records import (
    DecisionPage,
    DecisionQuery,
    Review,
    ReviewRequest,
    UserHistoryReport,
)
from core.models import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Event,
    EventAccepted,
    EventState,
    Platform,
    ScreenResponse,
    ScreenTexts,
)


@dataclass(frozen=True)
class Answer:
    """One documented answer of a route: what it means, and its JSON body's model if any."""

    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Route:
    """One HTTP route: its URL rule, the view that serves it, and what the document says of it.

    The document adds the error answers every route of a kind gives, so `errors` lists only
    those its view adds: 401 and 429 for a route that needs a key (webapp.access), 400, 413 and
    415 for one with a body (webapp.bodies), 422 for one with a body or query model.
    """

    method: str
    # A Flask rule; its <name> and <path:name> parts are the path parameters.
    path: str
    # "<blueprint>.<view method>", the route's name in metrics and logs.
    endpoint: str
    summary: str
    answers: Mapping[int, Answer]
    # Further statuses answered with an ErrorResponse, described in webapp.openapi.
    errors: tuple[int, ...] = ()
    # The JSON body's model; several: the body is any one of them.
    body: tuple[type[BaseModel], ...] = ()
    query: type[BaseModel] | None = None
    # Path parameters that are not plain strings.
    parameters: Mapping[str, type] = field(default_factory=dict)
    # Answered without an API key.
    public: bool = False
    # Served by prometheus-flask-exporter (webapp.metrics), which adds its own URL rule.
    external: bool = False
    # Answered by webapp.frontdoor before Flask sees the request (POST only: the URL map holds
    # the rule without a view, so that other methods get Flask's 405 and OPTIONS answers).
    lane: bool = False
    # A page of the moderators' console (webapp.console): HTML for a browser, signed in by a
    # session cookie rather than an API key (unless public), and not part of the API document.
    console: bool = False

    @property
    def blueprint(self) -> str:
        """The blueprint the route belongs to (the endpoint's first part)."""
        return self.endpoint.partition(".")[0]

    @property
    def view(self) -> str:
        """The name of the view method serving the route."""
        return self.endpoint.partition(".")[2]


_PLATFORM = {"platform": Platform}
_NOT_FOUND = Answer("unknown platform, event or user", ErrorResponse)

# The moderators' console's pages (webapp.console).
_PAGE = {200: Answer("an HTML page")}
_SEE_OTHER = {303: Answer("done; on to the next page")}
_CONSOLE: tuple[Route, ...] = (
    Route("GET", "/console/", "console.queue", "The high-risk queue", _PAGE, console=True),
    Route(
        "GET", "/console/rows", "console.rows", "The queue's rows, for live refresh", _PAGE,
        console=True,
    ),
    Route(
        "GET", "/console/sign-in", "console.sign_in_page", "The sign-in form", _PAGE,
        public=True, console=True,
    ),
    Route(
        "POST", "/console/sign-in", "console.sign_in", "Sign in with the tenant's API key",
        _SEE_OTHER, public=True, console=True,
    ),
    Route("POST", "/console/sign-out", "console.sign_out", "Sign out", _SEE_OTHER, console=True),
    Route(
        "GET", "/console/decisions/<platform>/<event_id>", "console.decision",
        "A decision and its receipt", _PAGE, console=True,
    ),
    Route(
        "POST", "/console/decisions/<platform>/<event_id>/review", "console.review",
        "Review a decision (the same code as POST /v1/events/.../review)",
        {**_SEE_OTHER, 201: Answer("the review, to a script")}, console=True,
    ),
    Route(
        "GET", "/console/users/<platform>/<path:user_id>", "console.user", "A user's history",
        _PAGE, console=True,
    ),
    Route(
        "GET", "/console/assets/<name>", "console.asset", "The console's script and style sheet",
        {200: Answer("the file")}, public=True, console=True,
    ),
)  # fmt: skip

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/events",
        "events.submit_event",
        "Queue one event for screening",
        body=(Event,),
        answers={
            202: Answer("accepted and durably queued", EventAccepted),
            200: Answer("a retry of an event already queued", EventAccepted),
            409: Answer("same identity, different content", ErrorResponse),
        },
        errors=(503,),
        lane=True,
    ),
    Route(
        "POST",
        "/v1/events/batch",
        "events.submit_batch",
        "Queue up to 500 events; one result per item, in order",
        body=(BatchRequest,),
        answers={200: Answer("one result per item", BatchResponse)},
        errors=(503,),
        lane=True,
    ),
    Route(
        "GET",
        "/v1/events/<platform>/<event_id>",
        "events.lookup_event",
        "The state of an event",
        parameters=_PLATFORM,
        answers={
            200: Answer("known event", EventState),
            404: Answer("unknown event", ErrorResponse),
        },
        errors=(503,),
    ),
    Route(
        "POST",
        "/v1/screen",
        "screen.screen",
        "Screen texts (or one event) now; nothing is queued or stored",
        body=(ScreenTexts, Event),
        answers={200: Answer("one decision per text, in order", ScreenResponse)},
        errors=(502, 503, 504),
    ),
    Route(
        "GET",
        "/v1/decisions",
        "archive.list_decisions",
        "Archived decisions, newest first, keyset-paginated (at most 500)",
        query=DecisionQuery,
        answers={200: Answer("a page", DecisionPage)},
        errors=(503,),
    ),
    # A user id is any text, slashes included: the URL map never merges slashes (create_app).
    Route(
        "GET",
        "/v1/users/<platform>/<path:user_id>",
        "archive.user",
        "A user's history: counts by category and route over 24 h, 7 d and all time, "
        "latest decisions, reviews, posting rate",
        parameters=_PLATFORM,
        answers={200: Answer("history", UserHistoryReport), 404: _NOT_FOUND},
        errors=(503,),
    ),
    Route(
        "POST",
        "/v1/events/<platform>/<event_id>/review",
        "archive.review",
        "Record a moderator's verdict; the text becomes a live labelled example on every "
        "screening worker",
        parameters=_PLATFORM,
        body=(ReviewRequest,),
        answers={
            201: Answer("the review", Review),
            404: _NOT_FOUND,
            409: Answer(
                "the event has no decision (queued, not archived yet, or dead-lettered)",
                ErrorResponse,
            ),
        },
        errors=(503,),
    ),
    Route(
        "GET",
        "/healthz",
        "health.healthz",
        "Liveness",
        answers={200: Answer("alive")},
        public=True,
    ),
    Route(
        "GET",
        "/readyz",
        "health.readyz",
        "Readiness: Redis reachable, backlog under its limit",
        answers={200: Answer("ready"), 503: Answer("not ready")},
        public=True,
    ),
    Route(
        "GET",
        "/metrics",
        "prometheus_metrics",
        "Prometheus metrics",
        answers={200: Answer("text exposition")},
        public=True,
        external=True,
    ),
    Route(
        "GET",
        "/openapi.json",
        "openapi.serve_document",
        "This OpenAPI document",
        answers={200: Answer("the document")},
        public=True,
    ),
    *_CONSOLE,
)

# What webapp.frontdoor answers itself: POST on these paths.
LANE_ROUTES = tuple(route for route in ROUTES if route.lane)
# What the API document describes: every route but the console's pages.
API_ROUTES = tuple(route for route in ROUTES if not route.console)
# Answered without an API key: public routes, and the console (which checks its own session).
KEYLESS_ENDPOINTS = frozenset(route.endpoint for route in ROUTES if route.public or route.console)


def register(app: Flask, views: Mapping[str, object]) -> None:
    """Add each route to `app`: one blueprint per views object, named as in the endpoints."""
    served = [route for route in ROUTES if not route.external]
    names = list(dict.fromkeys(route.blueprint for route in served))
    if set(names) != set(views):
        raise ValueError(f"views for {sorted(views)}, but the routes name {sorted(names)}")
    for name in names:
        blueprint = Blueprint(name, __name__)
        for route in served:
            if route.blueprint == name:
                view = None if route.lane else getattr(views[name], route.view)
                blueprint.add_url_rule(
                    route.path, endpoint=route.view, view_func=view, methods=[route.method]
                )
        app.register_blueprint(blueprint)
