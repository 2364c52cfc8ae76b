"""The web app as tests build it, and the API key its clients send."""

from __future__ import annotations

from typing import Any

from flask import Flask

from core.settings import Settings
from webapp import create_app

API_KEY = "test-key"
AUTH = {"X-API-Key": API_KEY}
# A second tenant's API_KEYS entry and key, for the tests that keep tenants apart.
RIVAL_KEY = "rival-key"
RIVAL_ENTRY = f"rival:{RIVAL_KEY}"


def make_app(redis_url: str, **overrides: Any) -> Flask:
    """An app configured for tests, with settings overridden by keyword."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_keys": [API_KEY],
        "backlog_refresh_s": 0.0,
    }
    values.update(overrides)
    return create_app(Settings(**values))
