"""Builders of valid request bodies for tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

_ids = itertools.count()


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid event body with a fresh event_id; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "event_id": f"evt-{next(_ids)}",
        "platform": "discord",
        "event_type": "message",
        "user_id": "user-1",
        "channel_id": "general",
        "content": "hello there, how is everyone doing today?",
        "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {"client": "tests"},
    }
    body.update(overrides)
    return body
