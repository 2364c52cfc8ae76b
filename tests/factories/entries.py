"""Stream entries as the pipeline writes them (accepted events, decisions, dead letters) and
the archive rows made of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from core.archive import build_row
from core.models import Category, Decision, Event
from core.stream import EventStream
from tests.factories.decisions import decision
from tests.factories.events import make_event

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def ingest(client: redis.Redis, count: int) -> list[Event]:
    """Accept `count` events through the ingest path (so the ledger counts them)."""
    events = [make_event() for _ in range(count)]
    EventStream(client).ingest(events, tenant="default")
    return events


def stream_id_at(moment: datetime, seq: int = 0) -> str:
    """An ingest-stream id whose time part is `moment`."""
    return f"{int(moment.timestamp() * 1000)}-{seq}"


def entry_fields(
    event_id: str,
    *,
    accepted: datetime,
    user_id: str = "u-1",
    category: Category = Category.LOW_RISK,
    route: str = "low",
    content: str = "hello there",
    seq: int = 0,
    tenant: str | None = None,
    receipt: Decision | None = None,
) -> dict[str, str]:
    """The fields of a high or low stream entry, as the decide script writes them (the
    tenant's when given; the receipt, when given, in place of the factory's decision)."""
    body = {
        "event_id": event_id,
        "platform": "discord",
        "event_type": "message",
        "user_id": user_id,
        "channel_id": "general",
        "content": content,
        "timestamp": accepted.isoformat(),
    }
    decided = receipt or decision(
        event_id, route=route, category=category, ingested_at=accepted, screened_at=accepted
    )
    tenanted = {"tenant": tenant} if tenant else {}
    return tenanted | {
        "stream_id": stream_id_at(accepted, seq),
        "decision": decided.model_dump_json(),
        "event": orjson.dumps(body).decode(),
        "request_id": f"req-{event_id}",
        "traceparent": TRACEPARENT,
    }


def dlq_fields(event_id: str, *, accepted: datetime) -> dict[str, str]:
    """The fields of a dead-letter entry."""
    fields = entry_fields(event_id, accepted=accepted)
    return {
        "stream_id": fields["stream_id"],
        "event": fields["event"],
        "reason": "PoisonedEvent: boom",
        "deliveries": "3",
    }


def rows_of(*entries: tuple[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Archive rows of (outcome, fields) pairs, each given a distinct outcome-stream id."""
    return [
        build_row(outcome, f"{fields['stream_id'].split('-')[0]}-{i + 1}", fields)  # type: ignore[arg-type]
        for i, (outcome, fields) in enumerate(entries)
    ]
