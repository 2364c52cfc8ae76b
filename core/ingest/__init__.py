"""The front door's guards: API keys and their tenants, per-key rate limits, backpressure."""

from core.ingest.apikeys import ApiKey, KeyRing, fingerprint
from core.ingest.backpressure import BacklogMonitor
from core.ingest.ratelimit import RateDecision, RateLimiter

__all__ = ["ApiKey", "BacklogMonitor", "KeyRing", "RateDecision", "RateLimiter", "fingerprint"]
