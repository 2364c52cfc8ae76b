"""The front door's guards: API keys, per-key rate limits and backpressure on the backlog."""

from core.ingest.apikeys import KeyRing, fingerprint
from core.ingest.backpressure import BacklogMonitor
from core.ingest.ratelimit import RateDecision, RateLimiter

__all__ = ["BacklogMonitor", "KeyRing", "RateDecision", "RateLimiter", "fingerprint"]
