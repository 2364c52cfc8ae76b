"""Per-tenant token buckets kept in Redis, so every web worker shares one budget per tenant.

A bucket holds up to `burst` tokens and refills at `rate_per_s`; every event costs a token (a
request for something else costs one). A request of n events passes when the bucket holds
min(n, burst) tokens, and takes all n: a batch larger than the burst is admitted from a full
bucket and leaves it in debt, so over any stretch of time a tenant sends at most its rate plus
one burst, however it groups its events.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.lua import ScriptRunner

# KEYS[1] = bucket; ARGV = rate per ms, burst, now_ms, cost, tokens the same request already
# paid. The bucket is a hash of the tokens left (negative while in debt) and when it was last
# filled; it expires once it would be full again, so idle buckets cost nothing.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local paid = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local needed = math.min(cost, burst - paid)
local allowed = 0
local wait_ms = 0
if tokens >= needed then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((needed - tokens) / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {allowed, wait_ms}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may pass, and if not how long to wait."""

    allowed: bool
    retry_after_s: int


class RateLimiter:
    """Token bucket per tenant: `rate_per_s` events per second with bursts up to `burst`."""

    def __init__(self, client: Client, rate_per_s: float, burst: int, keys: Keys = Keys()) -> None:
        self.rate_per_s = rate_per_s
        self.rate_per_ms = rate_per_s / 1000.0
        self.burst = burst
        self.keys = keys
        self._take = ScriptRunner(client, _TAKE_LUA)

    def take(
        self, tenant: str, cost: int = 1, now_ms: int | None = None, *, paid: int = 0
    ) -> RateDecision:
        """Spend `cost` tokens of this tenant's bucket (one per event); `paid` says how many the
        same request already spent, so that a request larger than the burst can still pass
        from a full bucket."""
        # The bucket is named by a digest, so tenant names never shape Redis key names.
        digest = hashlib.sha256(tenant.encode()).hexdigest()[:16]
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        try:
            allowed, wait_ms = self._take(
                [self.keys.rate_bucket(digest)], [self.rate_per_ms, self.burst, now, cost, paid]
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not check the rate limit: {exc}") from exc
        return RateDecision(bool(allowed), max(1, -(-int(wait_ms) // 1000)))

    def describe(self) -> str:
        """The limit in words, for the message of a 429."""
        return f"{self.rate_per_s:g} events/s with bursts of {self.burst}"
