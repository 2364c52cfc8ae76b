"""Entries of the ingest stream as they travel through the pipeline, and Redis replies as text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from core.models import DEFAULT_TENANT


def text(value: Any) -> str:
    """A Redis reply as text (this client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ingest-stream entry as the pipeline reads it from the stream."""

    stream_id: str
    event: str
    request_id: str = ""
    traceparent: str = ""
    ingested_at_ms: int = 0
    tenant: str = DEFAULT_TENANT
    # The ingest id the event was first accepted under, when this entry is a dead-letter replay
    # (core.stream.deadletters); carried to the outcome streams, where the archive keys on it.
    replayed_from: str = ""

    @classmethod
    def from_fields(cls, stream_id: Any, fields: dict[Any, Any]) -> Entry:
        """Build from an XREADGROUP/XCLAIM/XRANGE reply."""
        get = {text(k): text(v) for k, v in fields.items()}
        return cls(
            stream_id=text(stream_id),
            event=get.get("event", ""),
            request_id=get.get("request_id", ""),
            traceparent=get.get("traceparent", ""),
            ingested_at_ms=int(get.get("ingested_at", "0") or 0),
            # Entries queued before tenants existed belong to the default tenant.
            tenant=get.get("tenant") or DEFAULT_TENANT,
            replayed_from=get.get("replayed_from", ""),
        )

    def identity(self) -> tuple[str, str, str] | None:
        """(tenant, platform, event_id) of the entry's event, or None when it is unreadable."""
        return self._scoped("event_id")

    def sender(self) -> tuple[str, str, str] | None:
        """(tenant, platform, user_id) of whoever sent the entry's event (whose history it
        counts in), or None when it is unreadable."""
        return self._scoped("user_id")

    def _scoped(self, field: str) -> tuple[str, str, str] | None:
        """(tenant, platform, one field of the event), or None when the event is unreadable."""
        try:
            event = orjson.loads(self.event)
            return self.tenant, str(event["platform"]), str(event[field])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return None
