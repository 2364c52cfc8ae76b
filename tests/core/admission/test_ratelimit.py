"""Token buckets in Redis: bursts pass, the rest wait, events are counted one by one, and
tenants do not share budgets."""

from __future__ import annotations

import redis

from core.admission.ratelimit import RateLimiter


def test_burst_passes_then_requests_wait_until_tokens_refill(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=2.0, burst=3)
    assert [limiter.take("t", now_ms=0).allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.take("t", now_ms=0)
    assert denied.retry_after_s == 1
    assert limiter.take("t", now_ms=500).allowed  # one token back after half a second
    assert not limiter.take("t", now_ms=500).allowed


def test_each_tenant_has_its_own_bucket_named_by_a_digest(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=1.0, burst=1)
    assert limiter.take("alpha", now_ms=0).allowed
    assert not limiter.take("alpha", now_ms=0).allowed
    assert limiter.take("beta", now_ms=0).allowed
    assert not any(b"alpha" in key for key in redis_client.keys("*"))


def test_a_batch_costs_one_token_per_event(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=5.0, burst=10)
    assert limiter.take("beta", cost=8, now_ms=0).allowed
    assert not limiter.take("beta", cost=3, now_ms=0).allowed  # 2 left: 3 events wait
    assert limiter.take("beta", cost=2, now_ms=0).allowed
    assert not limiter.take("beta", now_ms=0).allowed


def test_a_batch_larger_than_the_burst_leaves_the_bucket_in_debt(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=5.0, burst=100)
    assert limiter.take("beta", cost=500, now_ms=0).allowed  # from a full bucket
    refused = limiter.take("beta", now_ms=1000)  # 400 in debt, 5 back: -395
    assert not refused.allowed and refused.retry_after_s == 80  # (1 + 395) / 5 per second
    assert not limiter.take("beta", now_ms=80_000).allowed  # back to 0 tokens
    assert limiter.take("beta", now_ms=81_000).allowed  # after the Retry-After
    assert limiter.take("alpha", now_ms=1000).allowed  # another tenant's bucket is full


def test_the_rest_of_a_request_larger_than_the_burst_passes_from_a_full_bucket(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=5.0, burst=100)
    assert limiter.take("beta", now_ms=0).allowed  # the request's first token
    assert limiter.take("beta", cost=499, now_ms=0, paid=1).allowed  # and its 499 more events
    assert not limiter.take("beta", now_ms=0).allowed
