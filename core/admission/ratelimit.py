"""Per-key token buckets kept in Redis, so every web worker shares one budget per key."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.lua import ScriptRunner

# KEYS[1] = bucket; ARGV = rate per ms, burst, now_ms. The bucket is a hash of the tokens left
# and when it was last filled; it expires once it would be full again, so idle keys cost nothing.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait_ms}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may pass, and if not how long to wait."""

    allowed: bool
    retry_after_s: int


class RateLimiter:
    """Token bucket per API key: `rate_per_s` requests per second with bursts up to `burst`."""

    def __init__(
        self, client: redis.Redis, rate_per_s: float, burst: int, keys: Keys = Keys()
    ) -> None:
        self.rate_per_ms = rate_per_s / 1000.0
        self.burst = burst
        self.keys = keys
        self._take = ScriptRunner(client, _TAKE_LUA)

    def take(self, api_key: str, now_ms: int | None = None) -> RateDecision:
        """Spend one token of this key's bucket."""
        # The bucket is named by a digest so the key itself never reaches Redis.
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        try:
            allowed, wait_ms = self._take(
                [self.keys.rate_bucket(digest)], [self.rate_per_ms, self.burst, now]
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not check the rate limit: {exc}") from exc
        return RateDecision(bool(allowed), max(1, -(-int(wait_ms) // 1000)))
