"""Fixtures of the web tests: an app on the session's real Redis and its test client."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, sync_playwright

from devtools.postgres_server import PostgresServer
from devtools.redis_server import RedisServer
from devtools.web_server import GunicornServer
from tests.factories import API_KEY, RIVAL_ENTRY, ROOT, ConsoleStack, Pipeline, make_app


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


@pytest.fixture(scope="module")
def console_stack(
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    pipeline_var: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ConsoleStack]:
    """The real stack, started once for a module's browser tests, on emptied stores."""
    redis.Redis.from_url(redis_server.url).flushall()
    dsn = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=screening"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions, reviews RESTART IDENTITY")
    work = tmp_path_factory.mktemp("console-stack")
    settings = {"database_url": postgres_server.url, "review_propagation_s": 1,
                "archive_interval_s": 0.5, "console_refresh_s": 1,
                "api_keys": f"{API_KEY},{RIVAL_ENTRY}"}  # fmt: skip
    pipeline = Pipeline(redis_server.url, pipeline_var, work / "logs", **settings)
    web = GunicornServer(redis_server.url, work, **{k.upper(): str(v) for k, v in settings.items()})
    try:
        pipeline.start_workers()
        web.start()
        yield ConsoleStack(pipeline, web)
    finally:
        web.stop()
        pipeline.processes.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's, installed here as the other tools are), driven by Playwright."""
    subprocess.run([str(ROOT / "scripts/ensure-tool.sh"), "chromium"], check=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        yield launched
        launched.close()
