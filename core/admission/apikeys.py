"""API keys and the tenants they belong to: constant-time matching, fingerprints safe to log.

`API_KEYS` entries are `tenant:key`; a bare `key` belongs to the tenant `default`, so
configurations from before tenants keep working. A key that itself contains `:` is written
with its tenant (`default:a:b` is the key `a:b` of the default tenant).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import ConfigError
from core.models import DEFAULT_TENANT, TENANT_PATTERN

_TENANT = re.compile(TENANT_PATTERN)


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key, for logs, metrics and rate-limit buckets."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key and the tenant whose events it sends and reads."""

    tenant: str
    key: str

    @classmethod
    def parse(cls, entry: str) -> ApiKey:
        """Read one `API_KEYS` entry: `tenant:key`, or a bare key of the default tenant."""
        tenant, sep, key = entry.partition(":")
        if not sep or not _TENANT.match(tenant):
            tenant, key = DEFAULT_TENANT, entry
        if not key:
            raise ConfigError(f"API_KEYS entry for tenant {tenant!r} has an empty key")
        return cls(tenant, key)


class KeyRing:
    """The configured API keys, checked without leaking through timing which one matched."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        # Comparing fixed-length digests keeps the comparison time independent of key lengths.
        self._entries: list[tuple[bytes, str]] = []
        owners: dict[bytes, str] = {}
        for api_key in keys:
            digest = hashlib.sha256(api_key.key.encode()).digest()
            owner = owners.setdefault(digest, api_key.tenant)
            if owner != api_key.tenant:
                raise ConfigError(
                    f"one API key is configured for two tenants ({owner}, {api_key.tenant})"
                )
            self._entries.append((digest, api_key.tenant))

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> KeyRing:
        """The key ring of `API_KEYS` entries (`tenant:key` or a bare key)."""
        return cls(ApiKey.parse(entry) for entry in entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tenants(self) -> set[str]:
        """Every tenant that has a key."""
        return {tenant for _, tenant in self._entries}

    def tenant_of(self, presented: str) -> str | None:
        """The tenant of the presented key, or None when it is not a configured key."""
        candidate = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for digest, tenant in self._entries:  # no early exit: every key is compared every time
            if hmac.compare_digest(candidate, digest):
                found = tenant
        return found

    def holds(self, key_id: str, tenant: str) -> bool:
        """Whether a key of this fingerprint (see `fingerprint`) is still configured for the
        tenant: what a session made with a key checks, so removing the key ends the session."""
        return any(
            hmac.compare_digest(digest.hex()[:12], key_id) and owner == tenant
            for digest, owner in self._entries
        )

    def secret(self) -> bytes:
        """A secret only the whole set of configured keys gives, stable across processes."""
        joined = b"\0".join(sorted(digest for digest, _ in self._entries))
        return hmac.new(b"screening-console-session", joined, hashlib.sha256).digest()
