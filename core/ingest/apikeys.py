"""API keys: constant-time matching, and fingerprints that are safe to log."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key, for logs, metrics and rate-limit buckets."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class KeyRing:
    """The configured API keys, checked without leaking through timing which one matched."""

    def __init__(self, keys: Iterable[str]) -> None:
        # Comparing fixed-length digests keeps the comparison time independent of key lengths.
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    def __len__(self) -> int:
        return len(self._digests)

    def matches(self, presented: str) -> bool:
        """Whether the presented key is one of the configured keys."""
        candidate = hashlib.sha256(presented.encode()).digest()
        found = False
        for digest in self._digests:  # no early exit: every key is compared every time
            found |= hmac.compare_digest(candidate, digest)
        return found
