"""The front door's side of the ingest stream: atomic dedup + XADD, lookup and backlog."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.models import Event, EventState, Platform
from core.stream.connection import Client
from core.stream.decisions import decode_record
from core.stream.entries import text
from core.stream.ledger import Backlog, LedgerReader
from core.stream.lua import ScriptRunner

# One call per batch: for each event, either find its dedup record (duplicate when the content
# hash matches, conflict when it does not) or XADD the event, write the record and count it as
# accepted. Redis runs a script atomically, so no crash or race can leave a record without its
# entry, two entries for one identity, or an entry the ledger does not count. Each entry carries
# its sequence number in the stream (`seq`), which lets the ledger count unread entries exactly
# (core.stream.ledger). One call may carry several requests' batches (`IngestRequest`, combined by
# core.stream.combining): each group of events has its own request id, trace context and tenant.
# KEYS = [stream, accepted counter, stream sequence, tenants' in-flight counts, dedup key of
#         event 1..n];
# ARGV = [window_s, now_ms, groups, then per group: request_id, traceparent, tenant, events,
#         then per event: hash, payload].
_INGEST_LUA = """
local stream = KEYS[1]
local window = ARGV[1]
local now = ARGV[2]
local groups = tonumber(ARGV[3])
local out = {}
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local accepted = 0
local key = 5
local arg = 4 + 4 * groups
for g = 0, groups - 1 do
  local request_id, traceparent, tenant = ARGV[4 + 4 * g], ARGV[5 + 4 * g], ARGV[6 + 4 * g]
  local before = accepted
  for _ = 1, tonumber(ARGV[7 + 4 * g]) do
    local h = ARGV[arg]
    local record = redis.call('GET', KEYS[key])
    if record then
      local sep = string.find(record, ' ', 1, true)
      if string.sub(record, 1, sep - 1) == h then out[#out + 1] = 'D' else out[#out + 1] = 'C' end
      out[#out + 1] = string.sub(record, sep + 1)
    else
      accepted = accepted + 1
      local id = redis.call('XADD', stream, '*', 'event', ARGV[arg + 1],
        'request_id', request_id, 'traceparent', traceparent, 'ingested_at', now,
        'tenant', tenant, 'seq', seq + accepted)
      redis.call('SET', KEYS[key], h .. ' ' .. id .. ' ' .. now, 'EX', window)
      out[#out + 1] = 'A'
      out[#out + 1] = id .. ' ' .. now
    end
    key = key + 1
    arg = arg + 2
  end
  if accepted > before then redis.call('HINCRBY', KEYS[4], tenant, accepted - before) end
end
if accepted > 0 then
  redis.call('INCRBY', KEYS[2], accepted)
  redis.call('INCRBY', KEYS[3], accepted)
end
return out
"""

IngestStatus = Literal["accepted", "duplicate", "conflict"]

_STATUS: dict[bytes, IngestStatus] = {b"A": "accepted", b"D": "duplicate", b"C": "conflict"}


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one event offered to the stream."""

    status: IngestStatus
    stream_id: str
    ingested_at_ms: int


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One request's events to queue, with what their entries carry besides the event."""

    events: Sequence[Event]
    tenant: str
    request_id: str = ""
    traceparent: str = ""


def content_hash(payload: bytes) -> str:
    """Hash an event's canonical payload; equal hashes mean a retry of the same event."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


class EventStream:
    """The ingest stream and its dedup records in one Redis."""

    def __init__(self, client: Client, keys: Keys = Keys(), window_s: int = 3600) -> None:
        self.client = client
        self.keys = keys
        self.window_s = window_s
        self._ingest = ScriptRunner(client, _INGEST_LUA)
        self._ledger = LedgerReader(client, keys)

    def ingest(
        self,
        events: Sequence[Event],
        request_id: str = "",
        traceparent: str = "",
        now_ms: int | None = None,
        *,
        tenant: str,
    ) -> list[IngestResult]:
        """Queue each of a tenant's events unless its identity is already known; one round
        trip for all."""
        request = IngestRequest(events, tenant, request_id, traceparent)
        [results] = self.ingest_many([request], now_ms)
        return results

    def ingest_many(
        self, requests: Sequence[IngestRequest], now_ms: int | None = None
    ) -> list[list[IngestResult]]:
        """`ingest` for several requests in one script call: each request's results, in order."""
        if not any(request.events for request in requests):
            return [[] for _ in requests]
        keys: list[str] = [
            self.keys.ingest_stream,
            self.keys.counter("accepted"),
            self.keys.ingest_sequence,
            self.keys.tenant_in_flight,
        ]
        args: list[str | bytes | int] = [
            self.window_s,
            now_ms if now_ms is not None else int(time.time() * 1000),
            len(requests),
        ]
        for request in requests:
            args += (request.request_id, request.traceparent, request.tenant, len(request.events))
        for request in requests:
            for event in request.events:
                payload = event.payload()
                keys.append(self.keys.dedup(request.tenant, event.platform, event.event_id))
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
        answers = []
        for request in requests:
            answers.append(results[: len(request.events)])
            results = results[len(request.events) :]
        return answers

    def lookup(self, tenant: str, platform: Platform, event_id: str) -> EventState | None:
        """What is known of a tenant's event: screened with its decision, dead-lettered with
        the reason, queued, or nothing (None)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.decision(tenant, platform.value, event_id))
            pipe.get(self.keys.dedup(tenant, platform.value, event_id))
            decided, record = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not look up event: {exc}") from exc
        identity = {"platform": platform, "event_id": event_id, "tenant": tenant}
        if decided is not None:
            stored = decode_record(decided)
            return EventState(
                **identity,
                state=stored.state,
                stream_id=stored.stream_id,
                ingested_at=stored.ingested_at,
                decision=stored.decision,
                reason=stored.reason,
            )
        if record is None:
            return None
        _hash, stream_id, at_ms = text(record).split(" ")
        return EventState(
            **identity,
            state="queued",
            stream_id=stream_id,
            ingested_at=datetime.fromtimestamp(int(at_ms) / 1000, UTC),
        )

    def backlog(self) -> int:
        """Entries not yet processed by the consumer group (see core.stream.ledger)."""
        return self._ledger.backlog()

    def backlog_by_tenant(self) -> Backlog:
        """The backlog, in all and per tenant (see core.stream.ledger)."""
        return self._ledger.backlog_by_tenant()
