"""The one typed settings object, read from the environment at each entry point."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_API_KEY = "dev-key"


class Settings(BaseSettings):
    """Every knob of the service; each field is read from the upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Redis and stream names
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(1.0, gt=0, description="socket timeout of each Redis call")
    ingest_stream: str = "events:ingest"
    key_prefix: str = Field("events", description="prefix of the dedup, lookup and rate keys")
    consumer_group: str = "screeners"
    dedup_window_s: int = Field(3600, ge=1)

    # HTTP front door
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    web_workers: int = Field(2, ge=1)
    web_connections: int = Field(1000, ge=1, description="gevent connections per web worker")
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(4 * 1024 * 1024, ge=1024)

    # Backpressure and rate limiting
    backlog_max: int = Field(100_000, ge=1, description="backlog at which the stream is full")
    backlog_high_water: float = Field(0.8, gt=0, le=1)
    backlog_refresh_s: float = Field(0.5, ge=0)
    retry_after_s: int = Field(2, ge=1)
    rate_limit_per_s: float = Field(0.0, ge=0, description="tokens per second per key; 0 is off")
    rate_limit_burst: int = Field(100, ge=1)

    log_level: str = "INFO"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        """Read API_KEYS as a comma-separated list."""
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def effective_api_keys(self) -> list[str]:
        """The configured keys, or the development key when none are configured."""
        return self.api_keys or [DEV_API_KEY]

    @property
    def using_dev_key(self) -> bool:
        """Whether the service falls back to the development key."""
        return not self.api_keys
