"""The screening task: what it writes about a failure (the fields and the error, never the
text), and which entries a batch screens."""

from __future__ import annotations

import orjson
import pytest
import redis
from pydantic import ValidationError

from core.errors import StoreUnavailable
from core.models import MAX_METADATA_DEPTH, Event
from core.stream import Entry, ScreeningStream
from tasks.batcher import BATCHER
from tasks.runtime import Runtime
from tasks.screening import failure_reason, read_entry, screen_batch
from tests.factories import AUTH, event_body, make_app, nested

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


def test_every_event_the_front_door_accepts_a_worker_can_read(redis_url: str) -> None:
    client = make_app(redis_url).test_client()
    deepest = nested(MAX_METADATA_DEPTH)
    deepest["u64"] = 2**64 - 1
    body = event_body(metadata=deepest, timestamp="0001-01-01T01:00:00+01:00")
    assert client.post("/v1/events", json=body, headers=AUTH).status_code == 202
    too_deep = event_body(metadata=nested(MAX_METADATA_DEPTH + 1))
    assert client.post("/v1/events", json=too_deep, headers=AUTH).status_code == 422
    reader = redis.Redis.from_url(redis_url)
    [(stream_id, fields)] = reader.xrange("events:ingest")
    item = read_entry(Entry.from_fields(stream_id, fields))
    assert item.event_id == body["event_id"] and item.tenant == "default"
    reader.close()


def _post(redis_url: str, count: int) -> None:
    """Send `count` events through the front door."""
    web = make_app(redis_url).test_client()
    for _ in range(count):
        assert web.post("/v1/events", json=event_body(), headers=AUTH).status_code == 202


def test_a_batch_takes_in_the_events_that_reached_the_stream_after_it_was_sent(
    redis_url: str, redis_client: redis.Redis, worker_side: Runtime
) -> None:
    stream = ScreeningStream.from_settings(redis_client, worker_side.settings)
    stream.ensure_group()
    _post(redis_url, 2)
    sent = [entry.stream_id for entry in stream.read(BATCHER, 10)]
    _post(redis_url, 3)  # while the batch waits in the broker
    result = screen_batch.apply(args=[sent]).get()
    assert result == {"decided": 5, "already_decided": 0, "failed": 0}
    ledger = stream.ledger()
    assert ledger.low == 5 and ledger.in_flight == 0 and ledger.balanced
    # Run again (a redelivery), the batch finds its events decided and nothing new to take.
    assert screen_batch.apply(args=[sent]).get()["decided"] == 0
    assert stream.ledger().low == 5


def test_a_batch_takes_in_new_events_only_up_to_the_batch_size(
    redis_url: str, redis_client: redis.Redis, worker_side: Runtime
) -> None:
    worker_side.settings = worker_side.settings.model_copy(update={"batch_size": 3})
    stream = ScreeningStream.from_settings(redis_client, worker_side.settings)
    stream.ensure_group()
    _post(redis_url, 2)
    sent = [entry.stream_id for entry in stream.read(BATCHER, 10)]
    _post(redis_url, 4)
    assert screen_batch.apply(args=[sent]).get()["decided"] == 3
    ledger = stream.ledger()
    assert ledger.low == 3 and ledger.in_flight == 3 and ledger.balanced
    assert len(stream.read(BATCHER, 10)) == 3  # unread, left for the next batch
