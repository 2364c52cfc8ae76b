"""How far the screeners' consumer group is behind the ingest stream: its unread entries.

The batcher asks this before queueing a partial batch behind one already waiting (a waiting
batch takes in new entries itself when a worker starts it). The count runs in one script and
reads nothing for the group: no entry becomes pending, and none leaves Redis.
"""

from __future__ import annotations

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.lua import ScriptRunner

# KEYS = [ingest stream]; ARGV = [group, limit]. Entries after the group's last-delivered id,
# counted up to `limit` (0 when the stream or the group is missing).
_UNREAD_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  if info['name'] == ARGV[1] then
    local after = '(' .. info['last-delivered-id']
    return #redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', tonumber(ARGV[2]))
  end
end
return 0
"""


class GroupLag:
    """The unread entries of one ingest stream's consumer group."""

    def __init__(self, client: Client, keys: Keys = Keys()) -> None:
        self.keys = keys
        self._count = ScriptRunner(client, _UNREAD_LUA)

    def count(self, limit: int) -> int:
        """How many entries no consumer of the group has read yet, counted up to `limit`."""
        try:
            return int(self._count([self.keys.ingest_stream], [self.keys.group, limit]))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not count unread entries: {exc}") from exc
