"""The front door's guards: API keys and their tenants, per-key rate limits, backpressure."""

from core.admission.apikeys import ApiKey, KeyRing, fingerprint
from core.admission.backpressure import BacklogMonitor
from core.admission.ratelimit import RateDecision, RateLimiter

__all__ = ["ApiKey", "BacklogMonitor", "KeyRing", "RateDecision", "RateLimiter", "fingerprint"]
