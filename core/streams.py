"""The ingest stream: atomic dedup + XADD, event lookup and backlog measurement."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
import redis

from core.errors import StoreUnavailable
from core.models import Decision, Event, EventState, Platform
from core.scripts import ScriptRunner

# One call per batch: for each event, either find its dedup record (duplicate when the content
# hash matches, conflict when it does not) or XADD the event, write the record and count it as
# accepted. Redis runs a script atomically, so no crash or race can leave a record without its
# entry, two entries for one identity, or an entry the ledger does not count.
# KEYS = [stream, accepted counter, dedup key of event 1..n];
# ARGV = [window_s, now_ms, request_id, traceparent, hash 1, payload 1, hash 2, payload 2, ...].
_INGEST_LUA = """
local stream = KEYS[1]
local window = ARGV[1]
local now = ARGV[2]
local out = {}
local accepted = 0
for i = 3, #KEYS do
  local h = ARGV[2 * i - 1]
  local record = redis.call('GET', KEYS[i])
  if record then
    local sep = string.find(record, ' ', 1, true)
    if string.sub(record, 1, sep - 1) == h then out[#out + 1] = 'D' else out[#out + 1] = 'C' end
    out[#out + 1] = string.sub(record, sep + 1)
  else
    local id = redis.call('XADD', stream, '*', 'event', ARGV[2 * i],
      'request_id', ARGV[3], 'traceparent', ARGV[4], 'ingested_at', now)
    redis.call('SET', KEYS[i], h .. ' ' .. id .. ' ' .. now, 'EX', window)
    accepted = accepted + 1
    out[#out + 1] = 'A'
    out[#out + 1] = id .. ' ' .. now
  end
end
if accepted > 0 then redis.call('INCRBY', KEYS[2], accepted) end
return out
"""

IngestStatus = Literal["accepted", "duplicate", "conflict"]

_STATUS: dict[bytes, IngestStatus] = {b"A": "accepted", b"D": "duplicate", b"C": "conflict"}


def _text(value: bytes | str) -> str:
    """Redis replies are bytes with this client; decode them."""
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one event offered to the stream."""

    status: IngestStatus
    stream_id: str
    ingested_at_ms: int


def decision_key(key_prefix: str, platform: str, event_id: str) -> str:
    """Key of the stored decision of an event, written by workers and read by the lookup API."""
    return f"{key_prefix}:decision:{platform}:{event_id}"


def content_hash(payload: bytes) -> str:
    """Hash an event's canonical payload; equal hashes mean a retry of the same event."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


class EventStream:
    """The ingest stream and its dedup records in one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str = "events:ingest",
        key_prefix: str = "events",
        window_s: int = 3600,
    ) -> None:
        self.client = client
        self.stream = stream
        self.key_prefix = key_prefix
        self.window_s = window_s
        self._ingest = ScriptRunner(client, _INGEST_LUA)

    def dedup_key(self, platform: str, event_id: str) -> str:
        """Key of the idempotency record of one event identity."""
        return f"{self.key_prefix}:dedup:{platform}:{event_id}"

    def ingest(
        self,
        events: Sequence[Event],
        request_id: str = "",
        traceparent: str = "",
        now_ms: int | None = None,
    ) -> list[IngestResult]:
        """Queue each event unless its identity is already known; one round trip for all."""
        if not events:
            return []
        keys: list[str] = [self.stream, f"{self.key_prefix}:count:accepted"]
        args: list[str | bytes | int] = [
            self.window_s,
            now_ms if now_ms is not None else int(time.time() * 1000),
            request_id,
            traceparent,
        ]
        for event in events:
            payload = event.payload()
            keys.append(self.dedup_key(event.platform, event.event_id))
            args.append(content_hash(payload))
            args.append(payload)
        try:
            raw = self._ingest(keys, args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not queue events: {exc}") from exc
        results = []
        for code, record in zip(raw[::2], raw[1::2], strict=True):
            stream_id, _, at_ms = record.decode().partition(" ")
            results.append(IngestResult(_STATUS[code], stream_id, int(at_ms)))
        return results

    def lookup(self, platform: Platform, event_id: str) -> EventState | None:
        """Return what is known of an event: screened with its decision, queued, or None."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(decision_key(self.key_prefix, platform.value, event_id))
            pipe.get(self.dedup_key(platform.value, event_id))
            decided, record = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not look up event: {exc}") from exc
        if decided is not None:
            stored = orjson.loads(decided)
            return EventState(
                platform=platform,
                event_id=event_id,
                state="screened",
                stream_id=stored["stream_id"],
                ingested_at=datetime.fromtimestamp(stored["ingested_at_ms"] / 1000, UTC),
                decision=Decision.model_validate(stored["decision"]),
            )
        if record is None:
            return None
        _hash, stream_id, at_ms = _text(record).split(" ")
        return EventState(
            platform=platform,
            event_id=event_id,
            state="queued",
            stream_id=stream_id,
            ingested_at=datetime.fromtimestamp(int(at_ms) / 1000, UTC),
        )

    def backlog(self, group: str) -> int:
        """Count entries not yet processed: the group's lag plus its pending entries.

        Before the consumer group exists, every entry of the stream is unprocessed.
        """
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xinfo_groups(self.stream)
            length, groups = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the backlog: {exc}") from exc
        if isinstance(length, Exception):
            raise StoreUnavailable(f"could not read the backlog: {length}")
        if isinstance(groups, Exception):  # no such key: the stream does not exist yet
            return 0
        for info in groups:
            if _text(info["name"]) == group:
                lag = info.get("lag")
                # lag is nil when Redis cannot tell (after deletions); count the whole stream.
                unread = int(length) if lag is None else int(lag)
                return unread + int(info["pending"])
        return int(length)
