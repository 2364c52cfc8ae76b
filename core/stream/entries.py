"""Entries of the ingest stream as they travel through the pipeline, and Redis replies as text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def text(value: Any) -> str:
    """A Redis reply as text (this client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ingest-stream entry as it travels through the pipeline (JSON-friendly)."""

    stream_id: str
    event: str
    request_id: str = ""
    traceparent: str = ""
    ingested_at_ms: int = 0

    @classmethod
    def from_fields(cls, stream_id: Any, fields: dict[Any, Any]) -> Entry:
        """Build from an XREADGROUP/XCLAIM reply."""
        get = {text(k): text(v) for k, v in fields.items()}
        return cls(
            stream_id=text(stream_id),
            event=get.get("event", ""),
            request_id=get.get("request_id", ""),
            traceparent=get.get("traceparent", ""),
            ingested_at_ms=int(get.get("ingested_at", "0") or 0),
        )

    def to_list(self) -> list[str | int]:
        """The compact form passed to Celery tasks as JSON."""
        return [self.stream_id, self.event, self.request_id, self.traceparent, self.ingested_at_ms]

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> Entry:
        """Inverse of to_list."""
        stream_id, event, request_id, traceparent, ingested_at_ms = values
        return cls(
            str(stream_id), str(event), str(request_id), str(traceparent), int(ingested_at_ms)
        )
