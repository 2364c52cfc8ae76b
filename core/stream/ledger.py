"""What the ingest stream owes: its unprocessed backlog, and the outcome ledger.

Every accepted event ends in exactly one of high, low or dead-letter, and until then it is in
flight: unread by the consumer group, or read and pending. The counters move inside the same
Lua scripts as the stream operations, so `accepted = high + low + dead-lettered + in flight`
holds at every instant; one script reads all of it atomically. A dead-lettered event sent back
for screening (core.stream.deadletters) is in flight again: it leaves the dead-lettered term
(dead-letterings minus replays) for the in-flight one in the same script that re-queues it.

The unread part is counted from the stream itself, not from the `lag` of XINFO GROUPS: Redis
7.0 replays a group's reads from the append-only file without advancing the group's read
counter, so after a rewrite and a restart `lag` reports events long since decided as unread
(redis/redis#10569, fixed in 7.2.4), and the reported backlog grows with every restart. Each
entry carries its sequence number (`seq`, the accepted count when it was queued), so the
unread entries are those from the first entry after the group's last-delivered id to the
newest: two range reads of one entry each, whatever the backlog and whatever the Redis version.
Every script that adds to the ingest stream (ingest, dead-letter replay) numbers its entries
from `Keys.ingest_sequence`. Entries queued before sequence numbers existed are counted one by
one, up to a bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

from core.errors import StoreUnavailable
from core.keys import OUTCOMES, Keys
from core.stream.connection import Client
from core.stream.entries import text
from core.stream.lua import ScriptRunner

# Entries without a sequence number counted at most, per reading (a few milliseconds of Redis).
LEGACY_COUNT_LIMIT = 10_000

# KEYS = [ingest stream, accepted, high, low, dlq, replayed counters]; ARGV = [group, legacy count
# limit]. Returns [accepted, high, low, dlq, replayed, pending, unread].
_LEDGER_LUA = """
local function seq_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'seq' then return tonumber(fields[i + 1]) end
  end
  return nil
end
local counts = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local out = {}
for i = 1, 5 do out[i] = tonumber(counts[i]) or 0 end
local pending, unread = 0, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local start = '-'
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == ARGV[1] then
      pending = info['pending']
      start = '(' .. info['last-delivered-id']
    end
  end
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local last = newest[1] and seq_of(newest[1][2])
  local limit = tonumber(ARGV[2])
  while true do
    local chunk = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1000)
    if #chunk == 0 then break end
    local first = seq_of(chunk[1][2])
    if first and last and last >= first then
      unread = unread + last - first + 1
      break
    end
    -- An entry from before sequence numbers: count it and look at the next.
    local n = 1
    while n < #chunk and not seq_of(chunk[n + 1][2]) do n = n + 1 end
    unread = unread + n
    if unread >= limit then
      unread = unread + redis.call('XLEN', KEYS[1])  -- too many to count: say more, not less
      break
    end
    start = '(' .. chunk[n][1]
  end
end
out[6] = pending
out[7] = unread
return out
"""


@dataclass(frozen=True, slots=True)
class Ledger:
    """An atomic snapshot of the outcome counters and of what is still in flight."""

    accepted: int
    high: int
    low: int
    dead_lettered: int  # in the dead-letter stream now: dead-letterings minus replays
    in_flight: int
    replayed: int = 0  # sent back from the dead-letter stream, ever

    @property
    def balanced(self) -> bool:
        """Whether every accepted event is accounted for."""
        return self.accepted == self.high + self.low + self.dead_lettered + self.in_flight


@dataclass(frozen=True, slots=True)
class Backlog:
    """Unprocessed events (unread plus pending), in all and per tenant."""

    total: int = 0
    by_tenant: Mapping[str, int] = field(default_factory=dict)

    def of(self, tenant: str) -> int:
        """One tenant's unprocessed events."""
        return self.by_tenant.get(tenant, 0)


class LedgerReader:
    """Reads the ledger and the backlog of one ingest stream, each in one atomic script."""

    def __init__(self, client: Client, keys: Keys = Keys()) -> None:
        self.keys = keys
        self._client = client
        self._read = ScriptRunner(client, _LEDGER_LUA)

    def ledger(self) -> Ledger:
        """Every counter and the in-flight count (unread + pending), read atomically."""
        k = self.keys
        try:
            accepted, high, low, dlq, replayed, pending, unread = self._read(
                [k.ingest_stream, *(k.counter(outcome) for outcome in OUTCOMES)],
                [k.group, LEGACY_COUNT_LIMIT],
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the ledger: {exc}") from exc
        in_flight = int(pending) + int(unread)
        return Ledger(
            int(accepted), int(high), int(low), int(dlq) - int(replayed), in_flight, int(replayed)
        )

    def backlog(self) -> int:
        """Entries not yet processed by the consumer group: unread plus pending."""
        return self.ledger().in_flight

    def backlog_by_tenant(self) -> Backlog:
        """The backlog, and each tenant's part of it (the per-tenant counts move in the same
        scripts as the ledger; a count below zero, from events queued before they existed,
        reads as zero, and none reads above the total)."""
        total = self.backlog()
        try:
            raw = self._client.hgetall(self.keys.tenant_in_flight)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the tenants' backlog: {exc}") from exc
        # No tenant holds more than the whole backlog: entries acknowledged outside the decide
        # scripts (an operator's XACK) leave a tenant's count behind, never the stream's.
        by_tenant = {text(k): min(total, max(0, int(v))) for k, v in raw.items()}
        return Backlog(total, by_tenant)


def read_ledger(client: Client, keys: Keys) -> Ledger:
    """Read every counter and the in-flight count in one atomic step."""
    return LedgerReader(client, keys).ledger()
