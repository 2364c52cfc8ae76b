"""Archive rows from the entries of the high, low and dead-letter streams.

A high or low entry carries the decision receipt, the event, the request id, the trace context
and the tenant; a dead-letter entry the event, the reason, the number of deliveries and when the
event was queued. Every entry carries the id of its ingest-stream entry, whose time part is when
the event was accepted; a replayed event's entries also carry the id it was first accepted
under (`replayed_from`), which keys its row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from core.models import DEFAULT_TENANT

Outcome = Literal["high", "low", "dlq"]
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class UnreadableEntry(ValueError):
    """A stream entry that holds no archivable event (never written by this service)."""


def trace_id(traceparent: str) -> str | None:
    """The 32 hex digits of a W3C traceparent, or None when it is not one."""
    match = _TRACEPARENT.match(traceparent.strip().lower())
    return match.group(1) if match else None


def stream_time(entry_id: str) -> datetime:
    """When Redis added a stream entry (the millisecond part of its id), in UTC."""
    return datetime.fromtimestamp(int(entry_id.partition("-")[0]) / 1000, UTC)


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from a receipt, as an aware datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def without_nul(value: Any) -> Any:
    """A value with every NUL character replaced by U+FFFD: PostgreSQL's text and jsonb cannot
    hold NUL, and an accepted event may carry one (in its content, say)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def build_row(outcome: Outcome, entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The decisions-table row of one high, low or dead-letter entry."""
    if any("\x00" in value or "\\u0000" in value for value in fields.values()):
        return without_nul(_row(outcome, entry_id, fields))  # type: ignore[no-any-return]
    return _row(outcome, entry_id, fields)


def _row(outcome: Outcome, entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """build_row's work, before any NUL is replaced."""
    try:
        event = orjson.loads(fields["event"])
        stream_id = fields["stream_id"]
        receipt = orjson.loads(fields["decision"]) if outcome != "dlq" else None
        row: dict[str, Any] = {
            "platform": event["platform"],
            "event_id": event["event_id"],
            # A replayed event keeps the row of its first acceptance: its new outcome replaces
            # the dead-letter one (see core.stream.deadletters).
            "accepted_at": stream_time(fields.get("replayed_from") or stream_id),
            "stream_id": stream_id,
            "outcome": outcome,
            "user_id": event["user_id"],
            "channel_id": event.get("channel_id"),
            "event_type": event["event_type"],
            "content": event["content"],
            "event_timestamp": datetime.fromisoformat(event["timestamp"]),
            "event_metadata": event.get("metadata"),
            "trace_id": trace_id(fields.get("traceparent", "")),
            "request_id": fields.get("request_id") or None,
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise UnreadableEntry(f"{outcome} entry {entry_id}: {type(exc).__name__}: {exc}") from exc
    # Entries written before tenants existed belong to the default tenant.
    row["tenant"] = fields.get("tenant") or DEFAULT_TENANT
    if receipt is None:
        ingested_ms = fields.get("ingested_at", "")
        row.update(
            ingested_at=(
                datetime.fromtimestamp(int(ingested_ms) / 1000, UTC)
                if ingested_ms.isdigit()
                else None
            ),
            decided_at=stream_time(entry_id),  # when it was dead-lettered
            category=None,
            route=None,
            action=None,
            risk_score=None,
            receipt=None,
            error=fields.get("reason"),
            deliveries=int(fields.get("deliveries") or 0),
        )
    else:
        row.update(
            ingested_at=_moment(receipt.get("ingested_at")),
            decided_at=_moment(receipt.get("screened_at")),
            category=receipt.get("category"),
            route=receipt.get("route"),
            action=receipt.get("action"),
            risk_score=receipt.get("risk_score"),
            receipt=receipt,
            error=None,
            deliveries=None,
        )
    return row
