"""The one exception family of the core package."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error raised on purpose by core."""


class StoreUnavailable(CoreError):
    """Redis could not be reached or did not answer in time."""


class ConfigError(CoreError):
    """A configuration value or file is unusable."""
