"""Moderators' sessions: sign-in with the tenant's API key, the session cookie, CSRF tokens.

A moderator signs in with one of the tenant's API keys (the credential the tenant already has;
the console adds no account store of its own) and a name recorded on their reviews. The session
is Flask's signed cookie: it holds the tenant, the key's fingerprint (never the key), the name
and a CSRF token. Each request checks that the fingerprint is still a configured key of that
tenant, so removing a key from API_KEYS ends the sessions made with it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from core.admission import KeyRing
from core.admission.apikeys import fingerprint
from core.settings import Settings

COOKIE = "console_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class Moderator:
    """Who is signed in: the tenant whose data they see, their key's fingerprint, their name."""

    tenant: str
    key_id: str
    name: str


class _CookieInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure when configured so or when the request came over HTTPS."""

    def __init__(self, secure: bool | None) -> None:
        self.secure = secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The session of a console request; every other request gets the null session.

        The cookie is scoped to the console's path, so no other request carries one. Opening
        it anyway built itsdangerous' serializer (whose constructor serialises a test value)
        and saving it read six cookie settings: about 10 µs of every API request.
        """
        if not request.path.startswith(app.config["SESSION_COOKIE_PATH"]):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure as configured; unset, whenever the request being answered is HTTPS."""
        if self.secure is not None:
            return self.secure
        return bool(request) and request.is_secure


def configure(app: Flask, settings: Settings, key_ring: KeyRing) -> None:
    """Give the app its session cookie: signed, HttpOnly, SameSite=Strict, scoped to /console."""
    app.secret_key = settings.console_secret_key or key_ring.secret()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours),
    )
    app.session_interface = _CookieInterface(settings.console_cookie_secure)


def sign_in(key_ring: KeyRing, key: str, name: str) -> Moderator | None:
    """Start a session for the key's tenant; None (and no session) when the key is not one."""
    tenant = key_ring.tenant_of(key)
    if tenant is None:
        return None
    session.clear()
    session.permanent = True
    moderator = Moderator(tenant, fingerprint(key), name)
    session.update(tenant=tenant, key_id=moderator.key_id, name=name)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)  # a new token with every sign-in
    return moderator


def sign_out() -> None:
    """End the session."""
    session.clear()


def signed_in(key_ring: KeyRing) -> Moderator | None:
    """The moderator of this request's session, while their key is still configured."""
    tenant, key_id, name = session.get("tenant"), session.get("key_id"), session.get("name")
    if not (isinstance(tenant, str) and isinstance(key_id, str) and isinstance(name, str)):
        return None
    if not key_ring.holds(key_id, tenant):
        return None
    return Moderator(tenant, key_id, name)


def csrf_token() -> str:
    """The session's CSRF token, made on first use (the sign-in form needs one too)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_valid(request: Request) -> bool:
    """Whether a POST carries the session's CSRF token, in its form or its X-CSRF-Token header."""
    expected = session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), sent.encode())
