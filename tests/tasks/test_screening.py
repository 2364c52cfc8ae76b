"""What the screening task writes about a failure: the fields and the error, never the text."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from core.errors import StoreUnavailable
from core.models import Event
from tasks.screening import failure_reason
from tests.factories import event_body

SECRET = "my password is hunter2 and I live at 12 Elm Street"


def test_an_unreadable_entry_is_described_by_its_invalid_fields_only() -> None:
    raw = orjson.dumps(event_body(content=SECRET, timestamp="yesterday"))
    with pytest.raises(ValidationError) as caught:
        Event.model_validate_json(raw)
    reason = failure_reason(caught.value)
    assert reason == "unreadable entry: invalid timestamp"
    assert "hunter2" not in reason


def test_a_foreign_error_is_named_with_where_it_was_raised_not_its_message() -> None:
    try:
        {"known": 1}[SECRET]
    except KeyError as exc:
        reason = failure_reason(exc)
    assert reason.startswith("KeyError at ") and "test_screening.py:" in reason
    assert "hunter2" not in reason


def test_the_projects_own_errors_keep_their_message() -> None:
    assert failure_reason(StoreUnavailable("could not write decisions")) == (
        "StoreUnavailable: could not write decisions"
    )
