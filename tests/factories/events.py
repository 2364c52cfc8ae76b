"""Events as clients send them: request bodies, validated events, deep metadata, and a mix of
harmful and benign texts whose routes are known."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from core.models import Event

HARMFUL = [
    "I am going to find you and kill you",
    "you are a worthless piece of shit and everyone hates you",
    "WIN a FREE iPhone!!! click bit.ly/free-prize now and call +1 555 0100",
    "go kill yourself you stupid bitch",
]
BENIGN = [
    "see you at the meeting tomorrow morning",
    "thanks for sharing the recipe, it turned out great",
    "does anyone know when the next release is planned?",
    "happy birthday! hope you have a lovely day",
]

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


def make_event(**overrides: Any) -> Event:
    """A validated event of event_body(**overrides)."""
    return Event.model_validate(event_body(**overrides))


def nested(depth: int) -> dict[str, Any]:
    """Metadata nested `depth` levels deep (the metadata object itself is level 1)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def mixed_events(count: int, prefix: str) -> list[dict[str, object]]:
    """`count` event bodies alternating harmful and benign content, each text told apart by a
    number (the same text from five senders would rightly trip the repeated-content rule)."""
    texts = [t for pair in zip(HARMFUL, BENIGN, strict=True) for t in pair]
    return [
        event_body(
            event_id=f"{prefix}-{i}",
            user_id=f"user-{i}",
            content=f"{texts[i % len(texts)]} #{i}",
        )
        for i in range(count)
    ]


def is_harmful(body: dict[str, object]) -> bool:
    """Whether a body from mixed_events() carries one of the harmful texts."""
    return str(body["content"]).rsplit(" #", 1)[0] in HARMFUL
