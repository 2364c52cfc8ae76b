"""Fixtures of the web tests: an app on the session's real Redis and its test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.settings import Settings
from devtools.web_server import GunicornServer
from webapp import create_app

API_KEY = "test-key"
AUTH = {"X-API-Key": API_KEY}


def make_app(redis_url: str, **overrides: Any) -> Flask:
    """An app configured for tests, with settings overridden by keyword."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_keys": [API_KEY],
        "backlog_refresh_s": 0.0,
    }
    values.update(overrides)
    return create_app(Settings(**values))


@pytest.fixture()
def app(redis_url: str) -> Flask:
    """The web app on a freshly emptied Redis."""
    return make_app(redis_url)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture()
def live_server(redis_url: str, tmp_path: Path) -> Iterator[GunicornServer]:
    """The app under gunicorn + gevent on a free port, on the session's emptied Redis."""
    server = GunicornServer(redis_url, tmp_path)
    server.start()
    yield server
    server.stop()
