"""Fixtures of the web tests: an app on the session's real Redis and its test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.web_server import GunicornServer
from tests.factories import make_app


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
