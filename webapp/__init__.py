"""The Flask application factory of the ingestion service."""

from __future__ import annotations

import structlog
from flask import Flask

from core.settings import Settings
from webapp import access, archive, events, health, openapi, screen, tracing
from webapp.errors import register_error_handlers
from webapp.methods import KnownMethods
from webapp.metrics import WebMetrics
from webapp.services import Services

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> Flask:
    """Build the web app for these settings; Redis is contacted on the first request."""
    app = Flask(__name__)
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
    app.register_blueprint(events.blueprint(services, metrics))
    app.register_blueprint(health.blueprint(services))
    app.register_blueprint(screen.blueprint(services))
    app.register_blueprint(archive.blueprint(services))
    app.register_blueprint(openapi.bp)
    tracing.instrument(app)
    # Outermost: a method the service does not know never reaches a metric, log or span.
    app.wsgi_app = KnownMethods(app.wsgi_app, metrics)  # type: ignore[method-assign]
    if settings.using_dev_key:
        log.warning(
            "dev_api_key", message="API_KEYS is not set: accepting the development key 'dev-key'"
        )
    return app
