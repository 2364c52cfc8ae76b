"""The front door's guards: API keys and their tenants, per-tenant rate limits, and fair
backpressure (each tenant's share of the backlog)."""

from core.admission.apikeys import ApiKey, KeyRing, fingerprint
from core.admission.backpressure import BacklogMonitor, Refusal
from core.admission.ratelimit import RateDecision, RateLimiter

__all__ = [
    "ApiKey",
    "BacklogMonitor",
    "KeyRing",
    "RateDecision",
    "RateLimiter",
    "Refusal",
    "fingerprint",
]
