"""The ingest stream on Redis: the front door's writer, the consumer group, the Lua runner.

`EventStream` queues events (dedup + XADD in one Lua step) and looks them up; `ScreeningStream`
is the consumer group's side (read, claim, reclaim, decide, dead-letter, trim); the ledger and
the decision record are shared by both. `ArchiveFeed` is the archiver's consumer group on the
decision streams, `LabelStream` carries moderators' labels to every screening worker.
"""

from core.stream.archive_feed import ArchiveFeed, Delivered
from core.stream.connection import connect
from core.stream.consumer import Reclaimed, ScreeningStream
from core.stream.decisions import DecisionRecord, decode_record, encode_record
from core.stream.entries import Entry
from core.stream.ingest import EventStream, IngestResult, IngestStatus, content_hash
from core.stream.labels import Label, LabelStream
from core.stream.ledger import Ledger, read_ledger, unprocessed
from core.stream.lua import ScriptRunner

__all__ = [
    "ArchiveFeed",
    "DecisionRecord",
    "Delivered",
    "Entry",
    "EventStream",
    "IngestResult",
    "IngestStatus",
    "Label",
    "LabelStream",
    "Ledger",
    "Reclaimed",
    "ScreeningStream",
    "ScriptRunner",
    "connect",
    "content_hash",
    "decode_record",
    "encode_record",
    "read_ledger",
    "unprocessed",
]
