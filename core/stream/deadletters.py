"""The dead-letter stream: what it holds, and sending its events back through screening.

An event is dead-lettered after MAX_DELIVERIES failed deliveries. Once the cause is fixed (a
bad rules file, a worker bug, an outage), `DeadLetters.replay` puts each dead-lettered event
back on the ingest stream as a new entry, exactly once: one script re-adds the event, deletes
its dead-letter entry and counts the replay, so two replays running at once, or a replay that
is interrupted and run again, never send an event twice. The ledger stays balanced throughout:
the event leaves the dead-lettered term (dead-letterings minus replays) and joins the in-flight
one in the same atomic step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.entries import text
from core.stream.lua import ScriptRunner

# KEYS = [dlq stream, ingest stream, replayed counter, stream sequence, tenants' in-flight counts];
# ARGV = [now_ms, dlq id 1, dlq id 2, ...]
# Every field of the dead-letter entry travels back except the dead-letter's own (its reason,
# delivery count and the old stream id, kept as replayed_from: the id the event was first
# accepted under, however many times it was replayed); ingested_at becomes now, so
# queue-wait metrics measure the replay, not the outage; and the entry gets the next sequence
# number of the stream, which the ledger counts unread entries by (core.stream.ledger).
_REPLAY_LUA = """
local skip = {stream_id = true, reason = true, deliveries = true, ingested_at = true,
  seq = true, replayed_from = true}
local out = {}
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found == 1 then
    local fields = found[1][2]
    local entry = {}
    local old, first, tenant = '', '', 'default'
    for j = 1, #fields, 2 do
      if fields[j] == 'stream_id' then old = fields[j + 1] end
      if fields[j] == 'tenant' then tenant = fields[j + 1] end
      if fields[j] == 'replayed_from' then first = fields[j + 1] end
      if not skip[fields[j]] then
        entry[#entry + 1] = fields[j]
        entry[#entry + 1] = fields[j + 1]
      end
    end
    entry[#entry + 1] = 'ingested_at'
    entry[#entry + 1] = ARGV[1]
    entry[#entry + 1] = 'replayed_from'
    entry[#entry + 1] = first ~= '' and first or old
    entry[#entry + 1] = 'seq'
    entry[#entry + 1] = redis.call('INCR', KEYS[4])
    out[#out + 1] = redis.call('XADD', KEYS[2], '*', unpack(entry))
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('INCR', KEYS[3])
    redis.call('HINCRBY', KEYS[5], tenant, 1)
  else
    out[#out + 1] = ''
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered event as an operator sees it (ids and why; never its content)."""

    dlq_id: str
    stream_id: str
    reason: str
    deliveries: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay did: the ingest-stream ids the events came back as."""

    new_stream_ids: list[str]

    @property
    def count(self) -> int:
        """How many events were sent back."""
        return len(self.new_stream_ids)


class DeadLetters:
    """The dead-letter stream of one deployment."""

    def __init__(self, client: Client, keys: Keys = Keys()) -> None:
        self.client = client
        self.keys = keys
        self._replay = ScriptRunner(client, _REPLAY_LUA)

    def oldest(self, count: int = 100, after: str = "-") -> list[DeadLetter]:
        """Dead-lettered events, oldest first, from after `after` (an exclusive dlq id)."""
        try:
            found = self.client.xrange(self.keys.dlq_stream, min=after, max="+", count=count)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the dead-letter stream: {exc}") from exc
        letters = []
        for dlq_id, raw in found or []:
            fields = {text(k): text(v) for k, v in (raw or {}).items()}
            letters.append(
                DeadLetter(
                    dlq_id=text(dlq_id),
                    stream_id=fields.get("stream_id", ""),
                    reason=fields.get("reason", ""),
                    deliveries=int(fields.get("deliveries", "0") or 0),
                )
            )
        return letters

    def newest_id(self) -> str | None:
        """The id of the newest dead-letter entry, or None when the stream is empty."""
        try:
            newest = self.client.xrevrange(self.keys.dlq_stream, count=1)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the dead-letter stream: {exc}") from exc
        return text(newest[0][0]) if newest else None

    def replay(self, limit: int | None = None, chunk: int = 100) -> Replayed:
        """Send dead-lettered events back to the ingest stream, oldest first, once each.

        Only what is dead-lettered when the call starts is replayed: an event that fails again
        meanwhile lands after that point and waits for the next replay.
        """
        last = self.newest_id()
        sent: list[str] = []
        cursor = "-"
        while last is not None and (limit is None or len(sent) < limit):
            want = chunk if limit is None else min(chunk, limit - len(sent))
            letters = [d for d in self.oldest(want, cursor) if _not_after(d.dlq_id, last)]
            if not letters:
                break
            cursor = f"({letters[-1].dlq_id}"
            keys = [
                self.keys.dlq_stream,
                self.keys.ingest_stream,
                self.keys.counter("replayed"),
                self.keys.ingest_sequence,
                self.keys.tenant_in_flight,
            ]
            args: list[str | int] = [int(time.time() * 1000), *(d.dlq_id for d in letters)]
            try:
                new_ids = self._replay(keys, args)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"could not replay dead letters: {exc}") from exc
            sent += [text(i) for i in new_ids if text(i)]
        return Replayed(sent)


def _not_after(stream_id: str, last: str) -> bool:
    """Whether a stream id is at or before another (ids compare as (ms, seq) pairs)."""
    ms, _, seq = stream_id.partition("-")
    last_ms, _, last_seq = last.partition("-")
    return (int(ms), int(seq or 0)) <= (int(last_ms), int(last_seq or 0))
