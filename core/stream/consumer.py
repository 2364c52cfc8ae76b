"""The consumer side of the ingest stream: read, claim, reclaim, decide, dead-letter, trim.

Every event ends in exactly one of high, low or dead-letter. Delivery inside the pipeline is
at least once (entries of a dead worker are reclaimed and dispatched again), so the final step
is guarded by XACK itself: a script acknowledges the entry and writes the outcome only when the
acknowledgement succeeds, i.e. when no earlier delivery already finished it. Counters move in
the same scripts, which is what makes the ledger (core.stream.ledger) hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.models import Decision
from core.settings import Settings
from core.stream.connection import Client
from core.stream.decisions import encode_dead_letter, encode_record
from core.stream.entries import Entry, text
from core.stream.lag import GroupLag
from core.stream.ledger import Ledger, LedgerReader
from core.stream.lua import ScriptRunner
from core.stream.retention import Retention, StreamTrimmer

# The user-history windows the decide script keeps (and the history rules read).
POSTS_WINDOW_MS = 60_000
HIGH_RISK_WINDOW_MS = 24 * 3600 * 1000

# KEYS = [ingest stream, high stream, low stream, high counter, low counter, tenants' in-flight
#         counts];
# ARGV = [group, ttl_s, posts since ms, high-risk since ms, posts ttl ms, high-risk ttl ms, then
#         per entry: stream id, route, decision key, record json, event json, request id,
#         traceparent, decision json, tenant, replayed_from ('' unless replayed), sender's posts
#         key, sender's high-risk key ('' when the sender is unknown), accepted ms].
# The sender's counters move in the same step as the decision and the ledger's counters, so
# each decided event counts exactly once in its tenant's history of that user.
_DECIDE_LUA = """
local out = {}
local n = 0
for i = 7, #ARGV, 13 do
  n = n + 1
  local id = ARGV[i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local high = ARGV[i + 1] == 'high'
    local fields = {'stream_id', id, 'decision', ARGV[i + 7], 'event', ARGV[i + 4],
      'request_id', ARGV[i + 5], 'traceparent', ARGV[i + 6], 'tenant', ARGV[i + 8]}
    if ARGV[i + 9] ~= '' then
      fields[#fields + 1] = 'replayed_from'
      fields[#fields + 1] = ARGV[i + 9]
    end
    redis.call('XADD', high and KEYS[2] or KEYS[3], '*', unpack(fields))
    redis.call('SET', ARGV[i + 2], ARGV[i + 3], 'EX', ARGV[2])
    redis.call('INCR', high and KEYS[4] or KEYS[5])
    redis.call('HINCRBY', KEYS[6], ARGV[i + 8], -1)
    local posts, risky, at = ARGV[i + 10], ARGV[i + 11], ARGV[i + 12]
    if posts ~= '' then
      redis.call('ZADD', posts, at, id)
      redis.call('ZREMRANGEBYSCORE', posts, '-inf', '(' .. ARGV[3])
      redis.call('PEXPIRE', posts, ARGV[5])
      if high then
        redis.call('ZADD', risky, at, id)
        redis.call('ZREMRANGEBYSCORE', risky, '-inf', '(' .. ARGV[4])
        redis.call('PEXPIRE', risky, ARGV[6])
      end
    end
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""

# KEYS = [ingest stream, dlq stream, dlq counter, tenants' in-flight counts];
# ARGV = [group, ttl_s, then per entry:
#         stream id, event json, reason, deliveries, request id, traceparent, ingested_at,
#         tenant, outcome key ('' when the event is unreadable), outcome record json,
#         replayed_from ('' unless replayed)]
# The dead-letter entry keeps the ingest entry's fields, so it can be sent back as it came; the
# outcome record tells lookups why the event was dead-lettered (never what it said).
_DEAD_LETTER_LUA = """
local out = {}
local n = 0
for i = 3, #ARGV, 11 do
  n = n + 1
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    local fields = {'stream_id', ARGV[i], 'event', ARGV[i + 1], 'reason', ARGV[i + 2],
      'deliveries', ARGV[i + 3], 'request_id', ARGV[i + 4], 'traceparent', ARGV[i + 5],
      'ingested_at', ARGV[i + 6], 'tenant', ARGV[i + 7]}
    if ARGV[i + 10] ~= '' then
      fields[#fields + 1] = 'replayed_from'
      fields[#fields + 1] = ARGV[i + 10]
    end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    if ARGV[i + 8] ~= '' then redis.call('SET', ARGV[i + 8], ARGV[i + 9], 'EX', ARGV[2]) end
    redis.call('INCR', KEYS[3])
    redis.call('HINCRBY', KEYS[4], ARGV[i + 7], -1)
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What a reclaim pass found: entries to dispatch again, and how many went to the DLQ."""

    entries: list[Entry]
    dead_lettered: int


class ScreeningStream:
    """The consumer group of the ingest stream and the streams decisions land on."""

    def __init__(
        self,
        client: Client,
        keys: Keys = Keys(),
        *,
        decision_ttl_s: int = 7 * 24 * 3600,
        max_deliveries: int = 3,
    ) -> None:
        self.client = client
        self.keys = keys
        self.decision_ttl_s = decision_ttl_s
        self.max_deliveries = max_deliveries
        self._decide = ScriptRunner(client, _DECIDE_LUA)
        self._dead_letter = ScriptRunner(client, _DEAD_LETTER_LUA)
        self._lag = GroupLag(client, keys)
        self._ledger = LedgerReader(client, keys)
        self._trimmer = StreamTrimmer(client)

    @classmethod
    def from_settings(cls, client: Client, settings: Settings) -> ScreeningStream:
        """The stream as configured: names, decision lifetime and delivery limit."""
        return cls(
            client,
            Keys.from_settings(settings),
            decision_ttl_s=settings.decision_ttl_s,
            max_deliveries=settings.max_deliveries,
        )

    def ensure_group(self) -> None:
        """Create the consumer group (from the first entry) and the stream, if missing."""
        try:
            self.client.xgroup_create(
                self.keys.ingest_stream, self.keys.group, id="0", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreUnavailable(f"could not create the consumer group: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not create the consumer group: {exc}") from exc

    def read(self, consumer: str, count: int, block_ms: int | None = None) -> list[Entry]:
        """Take up to `count` new entries for this consumer (they become pending)."""
        try:
            reply: Any = self.client.xreadgroup(
                self.keys.group,
                consumer,
                {self.keys.ingest_stream: ">"},
                count=count,
                block=block_ms,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self.ensure_group()
                return []
            raise StoreUnavailable(f"could not read the stream: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the stream: {exc}") from exc
        if not reply:
            return []
        return [Entry.from_fields(i, f) for _, entries in reply for i, f in entries if f]

    def unread(self, limit: int) -> int:
        """How many entries no consumer of the group has read yet, counted up to `limit`."""
        return self._lag.count(limit)

    def claim(self, consumer: str, stream_ids: Sequence[str]) -> list[Entry]:
        """Take entries for `consumer` now (resets idle; not a delivery) and read them from the
        stream. Entries no longer pending (an earlier delivery finished them) are left out."""
        if not stream_ids:
            return []
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xclaim(
                self.keys.ingest_stream,
                self.keys.group,
                consumer,
                0,
                list(stream_ids),
                justid=True,
            )
            for stream_id in stream_ids:
                pipe.xrange(self.keys.ingest_stream, stream_id, stream_id, count=1)
            claimed, *ranges = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not claim entries: {exc}") from exc
        mine = {text(stream_id) for stream_id in claimed}
        return [
            Entry.from_fields(found[0][0], found[0][1])
            for found in ranges
            if found and text(found[0][0]) in mine
        ]

    def hold(self, consumer: str, stream_ids: Sequence[str]) -> None:
        """Renew `consumer`'s claim on entries it is still working on (resets their idle time;
        not a delivery), so the reclaimer leaves them alone; finished entries are skipped."""
        if stream_ids:
            try:
                self.client.xclaim(
                    self.keys.ingest_stream,
                    self.keys.group,
                    consumer,
                    0,
                    list(stream_ids),
                    justid=True,
                )
            except redis.RedisError as exc:
                raise StoreUnavailable(f"could not renew a claim: {exc}") from exc

    def record_failure(self, stream_id: str, reason: str) -> None:
        """Remember why screening an entry failed, for its dead-letter record."""
        try:
            self.client.set(self.keys.failure(stream_id), reason[:2000], ex=86400)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not record a failure: {exc}") from exc

    def reclaim(self, consumer: str, min_idle_ms: int, count: int = 100) -> Reclaimed:
        """Take over entries idle for `min_idle_ms` (their worker died or failed on them).

        Entries already delivered `max_deliveries` times go to the dead-letter stream with the
        last recorded failure as the reason; the others are returned to be dispatched again.
        """
        try:
            pending = self.client.xpending_range(
                self.keys.ingest_stream,
                self.keys.group,
                min="-",
                max="+",
                count=count,
                idle=min_idle_ms,
            )
        except redis.ResponseError:
            return Reclaimed([], 0)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not list pending entries: {exc}") from exc
        if not pending:
            return Reclaimed([], 0)
        deliveries = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        try:
            # XCLAIM with min-idle: when two reclaimers race, only one of them gets each entry.
            claimed: Any = self.client.xclaim(
                self.keys.ingest_stream, self.keys.group, consumer, min_idle_ms, list(deliveries)
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not reclaim entries: {exc}") from exc
        again, dead = [], []
        for stream_id, fields in claimed:
            entry = Entry.from_fields(stream_id, fields or {})
            if deliveries.get(entry.stream_id, 0) >= self.max_deliveries or not fields:
                dead.append(entry)
            else:
                again.append(entry)
        return Reclaimed(again, self.dead_letter(dead, deliveries) if dead else 0)

    def dead_letter(self, entries: Sequence[Entry], deliveries: dict[str, int]) -> int:
        """Move entries to the dead-letter stream with their reason, and record the reason for
        lookups; returns how many moved."""
        try:
            reasons = self.client.mget([self.keys.failure(e.stream_id) for e in entries])
            args: list[str | int | bytes] = [self.keys.group, self.decision_ttl_s]
            for entry, reason in zip(entries, reasons, strict=True):
                count = deliveries.get(entry.stream_id, 0)
                why = text(reason) if reason else f"not finished after {count} deliveries"
                identity = entry.identity()
                args += [
                    entry.stream_id,
                    entry.event,
                    why,
                    count,
                    entry.request_id,
                    entry.traceparent,
                    entry.ingested_at_ms,
                    entry.tenant,
                    self.keys.decision(*identity) if identity else "",
                    encode_dead_letter(entry.stream_id, entry.ingested_at_ms, why),
                    entry.replayed_from,
                ]
            keys = self.keys
            moved = self._dead_letter(
                [keys.ingest_stream, keys.dlq_stream, keys.counter("dlq"), keys.tenant_in_flight],
                args,
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not dead-letter entries: {exc}") from exc
        return int(sum(moved))

    def decide(
        self, entries: Sequence[Entry], decisions: Sequence[Decision], now_ms: int | None = None
    ) -> list[bool]:
        """Route each decision, store it for lookup, count it in its sender's history (per
        tenant) and acknowledge its entry, atomically; identity and sender come from the entry.

        Returns, per entry, whether this call finished it (False: an earlier delivery did).
        """
        if not entries:
            return []
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        args: list[str | int | bytes] = [
            self.keys.group,
            self.decision_ttl_s,
            now - POSTS_WINDOW_MS,
            now - HIGH_RISK_WINDOW_MS,
            2 * POSTS_WINDOW_MS,
            HIGH_RISK_WINDOW_MS + POSTS_WINDOW_MS,
        ]
        for entry, decision in zip(entries, decisions, strict=True):
            identity, sender = entry.identity(), entry.sender()
            if identity is None:  # screened means parsed: the caller passes readable entries
                raise ValueError(f"entry {entry.stream_id} has no readable event identity")
            decision_json = decision.model_dump_json()
            args += [
                entry.stream_id,
                decision.route,
                self.keys.decision(*identity),
                encode_record(entry.stream_id, entry.ingested_at_ms, decision_json),
                entry.event,
                entry.request_id,
                entry.traceparent,
                decision_json,
                entry.tenant,
                entry.replayed_from,
                self.keys.user_posts(*sender) if sender else "",
                self.keys.user_high_risk(*sender) if sender else "",
                entry.ingested_at_ms or now,
            ]
        k = self.keys
        keys = [
            k.ingest_stream,
            k.high_stream,
            k.low_stream,
            k.counter("high"),
            k.counter("low"),
            k.tenant_in_flight,
        ]
        try:
            done = self._decide(keys, args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not write decisions: {exc}") from exc
        return [bool(flag) for flag in done]

    def user_history(
        self, users: Sequence[tuple[str, str, str]], now_ms: int | None = None
    ) -> list[tuple[int, int]]:
        """For each (tenant, platform, user id): high-risk decisions in the last 24 hours and
        decided events in the last minute, as the decide script counted them."""
        if not users:
            return []
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        try:
            pipe = self.client.pipeline(transaction=False)
            for user in users:
                pipe.zcount(self.keys.user_high_risk(*user), now - HIGH_RISK_WINDOW_MS, "+inf")
                pipe.zcount(self.keys.user_posts(*user), now - POSTS_WINDOW_MS, "+inf")
            counts = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read user history: {exc}") from exc
        return [(int(h), int(p)) for h, p in zip(counts[::2], counts[1::2], strict=True)]

    def trim(self, keep_s: int = 3600) -> int:
        """Drop acknowledged entries older than `keep_s`; never an unread or pending one."""
        rule = Retention(self.keys.ingest_stream, required_group=self.keys.group)
        return self._trimmer.trim(rule, older_than_ms=int(time.time() * 1000) - keep_s * 1000)

    def trim_decisions(self, maxlen: int) -> dict[str, int]:
        """Keep each decision stream (high, low) at its newest `maxlen` entries, or more while a
        consumer group has not read them; how many entries each lost."""
        return {
            stream: self._trimmer.trim(Retention(stream, keep_newest=maxlen))
            for stream in (self.keys.high_stream, self.keys.low_stream)
        }

    def ledger(self) -> Ledger:
        """Read every counter and the in-flight count in one atomic step."""
        return self._ledger.ledger()
