"""Token buckets in Redis: bursts pass, the rest wait, and keys do not share budgets."""

from __future__ import annotations

import redis

from core.admission.ratelimit import RateLimiter


def test_burst_passes_then_requests_wait_until_tokens_refill(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=2.0, burst=3)
    assert [limiter.take("k", now_ms=0).allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.take("k", now_ms=0)
    assert denied.retry_after_s == 1
    assert limiter.take("k", now_ms=500).allowed  # one token back after half a second
    assert not limiter.take("k", now_ms=500).allowed


def test_each_key_has_its_own_bucket_named_by_a_digest(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1.0, burst=1)
    assert limiter.take("alpha", now_ms=0).allowed
    assert not limiter.take("alpha", now_ms=0).allowed
    assert limiter.take("beta", now_ms=0).allowed
    assert not any(b"alpha" in key for key in redis_client.keys("*"))
