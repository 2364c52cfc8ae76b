"""The archive's exceptions: one base, and the outcomes callers answer differently."""

from __future__ import annotations

from core.errors import CoreError


class ArchiveError(CoreError):
    """Base of every error the archive raises on purpose."""


class ArchiveUnavailable(ArchiveError):
    """PostgreSQL could not be reached, or the archive is not configured."""


class UnknownEvent(ArchiveError):
    """No event with this identity is known."""


class NotDecided(ArchiveError):
    """The event is known but has no decision (queued, not archived yet, or dead-lettered)."""
