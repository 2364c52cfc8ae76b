"""The Flask application factory of the ingestion service."""

from __future__ import annotations

from functools import partial

import structlog
from flask import Flask

from core.settings import Settings
from webapp import access, console, routes, tracing
from webapp.archive import ArchiveViews
from webapp.errors import register_error_handlers
from webapp.events import EventViews
from webapp.frontdoor import FrontDoor
from webapp.health import HealthViews
from webapp.methods import KnownMethods
from webapp.metrics import WebMetrics
from webapp.openapi import OpenApiViews
from webapp.screen import ScreenViews
from webapp.services import Services

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> Flask:
    """Build the web app for these settings; Redis is contacted on the first request."""
    # No static folder: the URL map holds the route table's rules and nothing else.
    app = Flask(__name__, static_folder=None)
    # `//v1/events` is an unknown path (a JSON 404), not a redirect with werkzeug's HTML body.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["RETRY_AFTER_S"] = settings.retry_after_s
    services = Services(settings)
    metrics = WebMetrics(app)
    app.extensions["services"] = services
    app.extensions["web_metrics"] = metrics
    register_error_handlers(app, metrics.count_rejection)
    access.install(app, services, metrics)
    console.install(app, services)
    views = {
        "events": EventViews(services, metrics),
        "screen": ScreenViews(services),
        "archive": ArchiveViews(services),
        "health": HealthViews(services),
        "openapi": OpenApiViews(routes.API_ROUTES),
        "console": console.ConsoleViews(services),
    }
    routes.register(app, views)
    tracing.instrument(
        app, partial(FrontDoor, views=views["events"], services=services, metrics=metrics)
    )
    # Outermost: a method the service does not know never reaches a metric, log or span.
    app.wsgi_app = KnownMethods(app.wsgi_app, metrics)  # type: ignore[method-assign]
    if settings.using_dev_key:
        log.warning(
            "dev_api_key", message="API_KEYS is not set: accepting the development key 'dev-key'"
        )
    return app
