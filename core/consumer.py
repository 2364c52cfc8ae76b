"""The consumer side of the ingest stream: read, claim, reclaim, decide, dead-letter, trim.

Every event ends in exactly one of high, low or dead-letter. Delivery inside the pipeline is
at least once (entries of a dead worker are reclaimed and dispatched again), so the final step
is guarded by XACK itself: a script acknowledges the entry and writes the outcome only when the
acknowledgement succeeds, i.e. when no earlier delivery already finished it. Counters move in
the same scripts, which is what makes the ledger (accepted = high + low + dlq + in flight) hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from core.errors import StoreUnavailable
from core.models import Decision
from core.settings import Settings
from core.streams import decision_key

# KEYS = [ingest stream, high stream, low stream, high counter, low counter];
# ARGV = [group, ttl_s, then per entry: stream id, route, decision key, record json, event json,
#         request id, traceparent, decision json]
_DECIDE_LUA = """
local out = {}
local n = 0
for i = 3, #ARGV, 8 do
  n = n + 1
  local id = ARGV[i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local high = ARGV[i + 1] == 'high'
    redis.call('XADD', high and KEYS[2] or KEYS[3], '*', 'stream_id', id,
      'decision', ARGV[i + 7], 'event', ARGV[i + 4], 'request_id', ARGV[i + 5],
      'traceparent', ARGV[i + 6])
    redis.call('SET', ARGV[i + 2], ARGV[i + 3], 'EX', ARGV[2])
    redis.call('INCR', high and KEYS[4] or KEYS[5])
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""

# KEYS = [ingest stream, dlq stream, dlq counter]; ARGV = [group, then per entry: stream id,
#         event json, reason, deliveries]
_DEAD_LETTER_LUA = """
local out = {}
local n = 0
for i = 2, #ARGV, 4 do
  n = n + 1
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'stream_id', ARGV[i], 'event', ARGV[i + 1],
      'reason', ARGV[i + 2], 'deliveries', ARGV[i + 3])
    redis.call('INCR', KEYS[3])
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""


def _text(value: Any) -> str:
    """Redis replies are bytes with this client; decode them."""
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
        get = {_text(k): _text(v) for k, v in fields.items()}
        return cls(
            stream_id=_text(stream_id),
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


@dataclass(frozen=True, slots=True)
class Ledger:
    """An atomic snapshot of the outcome counters."""

    accepted: int
    high: int
    low: int
    dead_lettered: int
    in_flight: int

    @property
    def balanced(self) -> bool:
        """Whether every accepted event is accounted for."""
        return self.accepted == self.high + self.low + self.dead_lettered + self.in_flight


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What a reclaim pass found: entries to dispatch again, and how many went to the DLQ."""

    entries: list[Entry]
    dead_lettered: int


class ScreeningStream:
    """The consumer group of the ingest stream and the streams decisions land on."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str = "events:ingest",
        group: str = "screeners",
        key_prefix: str = "events",
        decision_ttl_s: int = 7 * 24 * 3600,
        max_deliveries: int = 3,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.prefix = key_prefix
        self.high_stream = f"{key_prefix}:risk:high"
        self.low_stream = f"{key_prefix}:risk:low"
        self.dlq_stream = f"{key_prefix}:dlq"
        self.decision_ttl_s = decision_ttl_s
        self.max_deliveries = max_deliveries
        self._decide = client.register_script(_DECIDE_LUA)
        self._dead_letter = client.register_script(_DEAD_LETTER_LUA)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> ScreeningStream:
        """The stream as configured: names, decision lifetime and delivery limit."""
        return cls(
            client,
            stream=settings.ingest_stream,
            group=settings.consumer_group,
            key_prefix=settings.key_prefix,
            decision_ttl_s=settings.decision_ttl_s,
            max_deliveries=settings.max_deliveries,
        )

    def counter(self, name: str) -> str:
        """Key of an outcome counter (accepted, high, low, dlq)."""
        return f"{self.prefix}:count:{name}"

    def decision_key(self, platform: str, event_id: str) -> str:
        """Key of the stored decision of an event, for the lookup API."""
        return decision_key(self.prefix, platform, event_id)

    def ensure_group(self) -> None:
        """Create the consumer group (from the first entry) and the stream, if missing."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreUnavailable(f"could not create the consumer group: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not create the consumer group: {exc}") from exc

    def read(self, consumer: str, count: int, block_ms: int | None = None) -> list[Entry]:
        """Take up to `count` new entries for this consumer (they become pending)."""
        try:
            reply: Any = self.client.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
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

    def claim(self, consumer: str, stream_ids: Sequence[str]) -> None:
        """Mark entries as being worked on by `consumer` now (resets idle; not a delivery)."""
        if stream_ids:
            try:
                self.client.xclaim(
                    self.stream, self.group, consumer, 0, list(stream_ids), justid=True
                )
            except redis.RedisError as exc:
                raise StoreUnavailable(f"could not claim entries: {exc}") from exc

    def record_failure(self, stream_id: str, reason: str) -> None:
        """Remember why screening an entry failed, for its dead-letter record."""
        try:
            self.client.set(f"{self.prefix}:failure:{stream_id}", reason[:2000], ex=86400)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not record a failure: {exc}") from exc

    def reclaim(self, consumer: str, min_idle_ms: int, count: int = 100) -> Reclaimed:
        """Take over entries idle for `min_idle_ms` (their worker died or failed on them).

        Entries already delivered `max_deliveries` times go to the dead-letter stream with the
        last recorded failure as the reason; the others are returned to be dispatched again.
        """
        try:
            pending = self.client.xpending_range(
                self.stream, self.group, min="-", max="+", count=count, idle=min_idle_ms
            )
        except redis.ResponseError:
            return Reclaimed([], 0)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not list pending entries: {exc}") from exc
        if not pending:
            return Reclaimed([], 0)
        deliveries = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        try:
            # XCLAIM with min-idle: when two reclaimers race, only one of them gets each entry.
            claimed: Any = self.client.xclaim(
                self.stream, self.group, consumer, min_idle_ms, list(deliveries)
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
        """Move entries to the dead-letter stream with their reason; returns how many moved."""
        try:
            reasons = self.client.mget([f"{self.prefix}:failure:{e.stream_id}" for e in entries])
            args: list[str | int] = [self.group]
            for entry, reason in zip(entries, reasons, strict=True):
                count = deliveries.get(entry.stream_id, 0)
                why = _text(reason) if reason else f"not finished after {count} deliveries"
                args += [entry.stream_id, entry.event, why, count]
            moved = self._dead_letter(
                keys=[self.stream, self.dlq_stream, self.counter("dlq")], args=args
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not dead-letter entries: {exc}") from exc
        return int(sum(moved))

    def decide(
        self,
        entries: Sequence[Entry],
        decisions: Sequence[Decision],
        platforms_ids: Sequence[tuple[str, str]],
    ) -> list[bool]:
        """Route each decision, store it for lookup and acknowledge its entry, atomically.

        Returns, per entry, whether this call finished it (False: an earlier delivery did).
        """
        if not entries:
            return []
        args: list[str | int | bytes] = [self.group, self.decision_ttl_s]
        for entry, decision, (platform, event_id) in zip(
            entries, decisions, platforms_ids, strict=True
        ):
            decision_json = decision.model_dump_json()
            record = orjson.dumps(
                {
                    "stream_id": entry.stream_id,
                    "ingested_at_ms": entry.ingested_at_ms,
                    "decision": orjson.Fragment(decision_json),
                }
            )
            args += [
                entry.stream_id,
                decision.route,
                self.decision_key(platform, event_id),
                record,
                entry.event,
                entry.request_id,
                entry.traceparent,
                decision_json,
            ]
        keys = [
            self.stream,
            self.high_stream,
            self.low_stream,
            self.counter("high"),
            self.counter("low"),
        ]
        try:
            done = self._decide(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not write decisions: {exc}") from exc
        return [bool(flag) for flag in done]

    def stored_decision(self, platform: str, event_id: str) -> dict[str, Any] | None:
        """The stored decision record of an event, or None."""
        try:
            raw = self.client.get(self.decision_key(platform, event_id))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read a decision: {exc}") from exc
        return orjson.loads(raw) if raw else None

    def trim(self, keep_s: int = 3600) -> int:
        """Drop acknowledged entries older than `keep_s`; never an unread or pending one."""
        try:
            groups = {_text(g["name"]): g for g in self.client.xinfo_groups(self.stream)}
            summary = self.client.xpending(self.stream, self.group)
        except redis.RedisError:
            return 0
        group = groups.get(self.group)
        if group is None:
            return 0
        if summary and summary.get("pending"):
            safe = _text(summary["min"])  # everything before the oldest pending entry is acked
        else:
            ms, _, seq = _text(group["last-delivered-id"]).partition("-")
            safe = f"{ms}-{int(seq or 0) + 1}"
        cutoff = f"{int(time.time() * 1000) - keep_s * 1000}-0"
        threshold = min(safe, cutoff, key=lambda i: tuple(int(p) for p in i.split("-")))
        try:
            return int(self.client.xtrim(self.stream, minid=threshold, approximate=False))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not trim the stream: {exc}") from exc

    def ledger(self) -> Ledger:
        """Read every counter and the in-flight count in one transaction."""
        names = ("accepted", "high", "low", "dlq")
        try:
            pipe = self.client.pipeline(transaction=True)
            for name in names:
                pipe.get(self.counter(name))
            pipe.xlen(self.stream)
            pipe.xinfo_groups(self.stream)
            *counts, length, groups = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the ledger: {exc}") from exc
        in_flight = 0
        if not isinstance(groups, Exception):
            for info in groups:
                if _text(info["name"]) == self.group:
                    lag = info.get("lag")
                    in_flight = int(info["pending"]) + (int(length) if lag is None else int(lag))
                    break
            else:
                in_flight = int(length) if not isinstance(length, Exception) else 0
        values = [int(c) if c and not isinstance(c, Exception) else 0 for c in counts]
        return Ledger(values[0], values[1], values[2], values[3], in_flight)
