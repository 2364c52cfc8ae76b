"""What the streams keep: never an entry a consumer group still needs, and no more than asked.

A consumer group still needs every entry it has not acknowledged: those it holds pending, and
those not delivered to it yet (after its last-delivered id). Only entries older than the oldest
such entry over every group of a stream may go. Within that, the ingest stream drops what is
older than `STREAM_KEEP_S` (an event is looked up by its dedup record, not its entry), and each
decision stream (high, low) keeps its newest `DECISION_STREAM_MAXLEN` entries, or more while a
group (the archiver, a moderators' reader) has not read them. Readers without a consumer group
(plain XREAD) get no such promise. One script decides and trims, so a group created or moved in
between cannot lose an entry to a trim computed before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from core.errors import StoreUnavailable
from core.stream.connection import Client
from core.stream.lua import ScriptRunner

# Entries one trim removes at most: a stream found with millions too many (a first run after an
# upgrade) is worked through over several ticks rather than in one long script.
TRIM_BATCH = 10_000

# KEYS = [stream]; ARGV = [keep newest n ('' for no count limit), drop older than this id ('' for
# no age limit), group that must exist ('' for none), batch]. Returns how many entries went.
_TRIM_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function key(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function before(a, b)
  local am, as = key(a)
  local bm, bs = key(b)
  return am < bm or (am == bm and as < bs)
end
local function after(id)
  local ms, seq = key(id)
  return ms .. '-' .. (seq + 1)
end
-- The oldest entry some group still needs: its oldest pending one, or the one after its
-- last-delivered id.
local needed = nil
local required = ARGV[3] == ''
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  if info['name'] == ARGV[3] then required = true end
  local first = after(info['last-delivered-id'])
  if tonumber(info['pending']) > 0 then
    first = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if needed == nil or before(first, needed) then needed = first end
end
if not required then return 0 end
local stop = needed
if ARGV[2] ~= '' and (stop == nil or before(ARGV[2], stop)) then stop = ARGV[2] end
if ARGV[1] ~= '' then
  local over = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
  if over <= 0 then return 0 end
  local range = redis.call('XRANGE', KEYS[1], '-', stop and ('(' .. stop) or '+', 'COUNT',
    math.min(over, tonumber(ARGV[4])))
  if #range == 0 then return 0 end
  stop = after(range[#range][1])
end
if stop == nil then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', stop)
"""


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of one stream to keep beyond what its consumer groups still need."""

    stream: str
    keep_newest: int | None = None  # entries; None: no count limit
    required_group: str = ""  # trim nothing until this group exists (its consumer is coming)


class StreamTrimmer:
    """Trims streams by their retention rules, one atomic script per stream."""

    def __init__(self, client: Client) -> None:
        self._trim = ScriptRunner(client, _TRIM_LUA)

    def trim(self, rule: Retention, older_than_ms: int | None = None) -> int:
        """Drop what the rule lets go (and, with `older_than_ms`, only entries older than it);
        how many entries went."""
        args: list[str | int] = [
            "" if rule.keep_newest is None else rule.keep_newest,
            "" if older_than_ms is None else f"{older_than_ms}-0",
            rule.required_group,
            TRIM_BATCH,
        ]
        try:
            return int(self._trim([rule.stream], args))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not trim {rule.stream}: {exc}") from exc
