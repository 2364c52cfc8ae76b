"""The moderators' console under /console/: server-rendered pages on the archive's data.

Served by the web app itself (no other server, no build step): Jinja templates, one script and
one style sheet shipped in this package. A moderator signs in with the tenant's API key
(webapp.console.sessions); every page sends its own Content-Security-Policy, and every POST
must carry the session's CSRF token.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from webapp.console import sessions
from webapp.console.views import ConsoleViews, redirect
from webapp.errors import ApiError
from webapp.routes import ROUTES
from webapp.services import Services

__all__ = ["CONSOLE_HEADERS", "ConsoleViews", "install"]

# Scripts, styles and fetches from this origin only; nothing inline, nothing framed. Bars and
# charts are SVG attributes, so no style attribute is needed either.
CONSOLE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
_CONSOLE = frozenset(route.endpoint for route in ROUTES if route.console)
_SIGNED_IN = frozenset(route.endpoint for route in ROUTES if route.console and not route.public)


def install(app: Flask, services: Services) -> None:
    """Give the app the console's sessions, its sign-in and CSRF checks, and its headers."""
    sessions.configure(app, services.settings, services.key_ring)

    @app.before_request
    def _check() -> Response | None:
        if request.endpoint not in _CONSOLE:
            return None
        if request.method == "POST" and not sessions.csrf_valid(request):
            raise ApiError(403, "csrf_failed", "missing or wrong CSRF token; reload the page")
        if request.endpoint in _SIGNED_IN:
            moderator = sessions.signed_in(services.key_ring)
            if moderator is None:
                if request.method == "GET" and request.endpoint != "console.rows":
                    return redirect("/console/sign-in")
                raise ApiError(401, "unauthorized", "sign in to the console first")
            g.moderator = moderator
            g.tenant = moderator.tenant  # for the access log
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        if request.endpoint in _CONSOLE or request.path.startswith("/console"):
            for name, value in CONSOLE_HEADERS:
                response.headers[name] = value
            if request.endpoint != "console.asset":
                response.headers["Cache-Control"] = "no-store"
        return response
