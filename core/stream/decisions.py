"""The outcome record of an event: written by workers with its routing, read by lookups.

The record is the decision plus what a lookup needs beside it (the ingest stream id and when the
event was accepted), or, for an event that could not be screened, the reason it was
dead-lettered (never its content); it lives under `Keys.decision` for DECISION_TTL_S.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from core.models import Decision


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored outcome with the stream id and acceptance time of its event."""

    stream_id: str
    ingested_at: datetime
    state: Literal["screened", "dead_lettered"] = "screened"
    decision: Decision | None = None
    reason: str | None = None


def encode_record(stream_id: str, ingested_at_ms: int, decision_json: str) -> bytes:
    """The stored form of a decision (its JSON is embedded as is, not parsed again)."""
    return orjson.dumps(
        {
            "stream_id": stream_id,
            "ingested_at_ms": ingested_at_ms,
            "decision": orjson.Fragment(decision_json),
        }
    )


def encode_dead_letter(stream_id: str, ingested_at_ms: int, reason: str) -> bytes:
    """The stored form of a dead-lettered event: why, not what it said."""
    return orjson.dumps(
        {"stream_id": stream_id, "ingested_at_ms": ingested_at_ms, "dead_lettered": reason}
    )


def decode_record(raw: bytes) -> DecisionRecord:
    """Read back what encode_record or encode_dead_letter wrote."""
    stored = orjson.loads(raw)
    ingested_at = datetime.fromtimestamp(stored["ingested_at_ms"] / 1000, UTC)
    if "dead_lettered" in stored:
        return DecisionRecord(
            stored["stream_id"], ingested_at, "dead_lettered", reason=stored["dead_lettered"]
        )
    return DecisionRecord(
        stored["stream_id"], ingested_at, decision=Decision.model_validate(stored["decision"])
    )
