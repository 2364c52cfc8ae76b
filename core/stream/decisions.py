"""The decision record of an event: written by workers with its routing, read by lookups.

The record is the decision plus what a lookup needs beside it (the ingest stream id and when the
event was accepted); it lives under `Keys.decision` for DECISION_TTL_S.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from core.models import Decision


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored decision with the stream id and acceptance time of its event."""

    stream_id: str
    ingested_at: datetime
    decision: Decision


def encode_record(stream_id: str, ingested_at_ms: int, decision_json: str) -> bytes:
    """The stored form of a decision (its JSON is embedded as is, not parsed again)."""
    return orjson.dumps(
        {
            "stream_id": stream_id,
            "ingested_at_ms": ingested_at_ms,
            "decision": orjson.Fragment(decision_json),
        }
    )


def decode_record(raw: bytes) -> DecisionRecord:
    """Read back what encode_record wrote."""
    stored = orjson.loads(raw)
    return DecisionRecord(
        stream_id=stored["stream_id"],
        ingested_at=datetime.fromtimestamp(stored["ingested_at_ms"] / 1000, UTC),
        decision=Decision.model_validate(stored["decision"]),
    )
