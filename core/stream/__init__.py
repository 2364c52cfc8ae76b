"""The ingest stream on Redis: the front door's writer, the consumer group, the Lua runner.

`EventStream` queues events (dedup + XADD in one Lua step) and looks them up, and
`IngestCombiner` joins concurrent callers' events into shared calls; `ScreeningStream`
is the consumer group's side (read, claim, reclaim, decide, dead-letter, trim); `DeadLetters`
sends dead-lettered events back once each; `read_status` says how far behind the group is; the
ledger and the decision record are shared by all. `ArchiveFeed` is the archiver's consumer group
on the decision streams, `LabelStream` carries moderators' labels to every screening worker.
"""

from core.stream.archive_feed import ArchiveFeed, Delivered
from core.stream.combining import IngestCombiner
from core.stream.connection import connect
from core.stream.consumer import Reclaimed, ScreeningStream
from core.stream.deadletters import DeadLetter, DeadLetters, Replayed
from core.stream.decisions import (
    DecisionRecord,
    decode_record,
    encode_dead_letter,
    encode_record,
)
from core.stream.entries import Entry
from core.stream.ingest import (
    EventStream,
    IngestRequest,
    IngestResult,
    IngestStatus,
    content_hash,
)
from core.stream.labels import Label, LabelStream
from core.stream.ledger import Backlog, Ledger, LedgerReader, read_ledger
from core.stream.lua import ScriptRunner
from core.stream.status import StreamStatus, read_status

__all__ = [
    "ArchiveFeed",
    "Backlog",
    "DeadLetter",
    "DeadLetters",
    "DecisionRecord",
    "Delivered",
    "Entry",
    "EventStream",
    "IngestCombiner",
    "IngestRequest",
    "IngestResult",
    "IngestStatus",
    "Label",
    "LabelStream",
    "Ledger",
    "LedgerReader",
    "Reclaimed",
    "Replayed",
    "ScreeningStream",
    "ScriptRunner",
    "StreamStatus",
    "connect",
    "content_hash",
    "decode_record",
    "encode_dead_letter",
    "encode_record",
    "read_ledger",
    "read_status",
]
