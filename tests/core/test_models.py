"""Event validation beyond the HTTP tests: canonical payloads and timestamp handling."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.models import Event
from tests.factories import event_body


def test_equal_content_serialises_to_equal_payloads() -> None:
    body = event_body(metadata={"b": {"y": 1, "x": 2}, "a": 1})
    a = Event.model_validate(body)
    b = Event.model_validate({**body, "metadata": {"a": 1, "b": {"x": 2, "y": 1}}})
    assert a.payload() == b.payload()


def test_timestamps_are_normalised_to_utc() -> None:
    a = Event.model_validate(event_body(event_id="t", timestamp="2026-01-01T02:00:00+02:00"))
    b = Event.model_validate(event_body(event_id="t", timestamp="2026-01-01T00:00:00Z"))
    assert a.timestamp == b.timestamp
    assert a.payload() == b.payload()


def test_nanosecond_fractions_are_accepted() -> None:
    event = Event.model_validate(event_body(timestamp="2026-01-01T00:00:00.123456789Z"))
    assert event.timestamp.microsecond == 123456


@pytest.mark.parametrize("content", ["x" * 10_000, "é" * 10_000, "🙂" * 10_000])
def test_content_limit_counts_characters_not_bytes(content: str) -> None:
    assert Event.model_validate(event_body(content=content)).content == content


def test_events_are_immutable() -> None:
    event = Event.model_validate(event_body())
    with pytest.raises(ValidationError):
        event.content = "edited"  # type: ignore[misc]
