"""The ingest stream on Redis: the front door's writer, the consumer group, the Lua runner.

`EventStream` queues events (dedup + XADD in one Lua step) and looks them up; `ScreeningStream`
is the consumer group's side (read, claim, reclaim, decide, dead-letter, trim); the ledger and
the decision record are shared by both.
"""

from core.stream.connection import connect
from core.stream.consumer import Reclaimed, ScreeningStream
from core.stream.decisions import (
    DecisionRecord,
    decode_record,
    encode_dead_letter,
    encode_record,
)
from core.stream.entries import Entry
from core.stream.ingest import EventStream, IngestResult, IngestStatus, content_hash
from core.stream.ledger import Ledger, LedgerReader, read_ledger
from core.stream.lua import ScriptRunner

__all__ = [
    "DecisionRecord",
    "Entry",
    "EventStream",
    "IngestResult",
    "IngestStatus",
    "Ledger",
    "LedgerReader",
    "Reclaimed",
    "ScreeningStream",
    "ScriptRunner",
    "connect",
    "content_hash",
    "decode_record",
    "encode_dead_letter",
    "encode_record",
    "read_ledger",
]
