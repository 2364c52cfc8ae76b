"""The one typed settings object, read from the environment at each entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

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
    redis_cluster_nodes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host:port,... of a Redis Cluster for the streams; unset: REDIS_URL alone",
    )
    redis_cluster_password: str | None = Field(None, description="AUTH of the cluster's nodes")
    ingest_shards: int = Field(8, ge=1, le=1024, description="stream shards on a Redis Cluster")

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
    rate_limit_per_s: float = Field(
        0.0, ge=0, description="events per second each tenant may send; 0 is off"
    )
    rate_limit_burst: int = Field(100, ge=1, description="events a tenant may send at once")

    # Screening engine
    embed_model: str = Field("all-MiniLM-L6-v2", description="sentence-transformers path or name")
    embed_backend: str = Field("auto", description="auto, torch, onnx or onnx-fp32")
    embed_device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    embed_batch_size: int = Field(128, ge=1)
    embed_threads: int | None = Field(None, ge=1, description="CPU threads for inference")
    embed_cache_ttl_s: int = Field(7 * 24 * 3600, ge=0, description="0 turns the cache off")
    var_dir: Path = Field(Path("var"), description="where the reference index and reports live")
    model_dir: Path = Field(Path("var/models"), description="where exported ONNX models live")
    reference_path: Path | None = Field(None, description="labelled examples CSV; shipped set")
    rules_path: Path | None = Field(None, description="rules file; the shipped one by default")
    rules_reload_s: float = Field(2.0, ge=0, description="how often workers check the rules file")
    scoring_path: Path | None = Field(None, description="thresholds and examples; shipped default")
    trained_model_path: Path | None = Field(
        None, description="directory of the trained head, blender and card; shipped default"
    )
    repeat_window_s: int = Field(600, ge=1, description="window of the repeated-content signal")
    reference_index: Literal["flat", "hnsw", "ivf-hnsw", "ivf-sq8", "ivf-pq"] = Field(
        "hnsw", description="FAISS index type of the reference vectors (docs/configuration.md)"
    )
    reference_index_nlist: int | None = Field(
        None, ge=1, description="inverted lists of the ivf-* types; unset: from the row count"
    )
    reference_index_nprobe: int = Field(32, ge=1, description="lists an ivf-* search visits")
    reference_index_ef_search: int = Field(64, ge=1, description="HNSW search breadth (efSearch)")
    search_threads: int | None = Field(
        None,
        ge=1,
        description="OpenMP threads of the reference search; unset: 1 where the encoder runs on "
        "the CPU, OpenMP's default (every core) on a GPU host",
    )

    # Pipeline (Celery workers, batcher, decisions)
    celery_broker_url: str | None = Field(
        None,
        pattern=r"^(rediss?|redis\+socket|amqps?|pyamqp)://",
        description="broker: a Redis, or a RabbitMQ (amqp://, quorum queues); REDIS_URL when unset",
    )
    gpu_queues: int = Field(0, ge=0, description="how many screen.gpuN queues to declare")
    batch_size: int = Field(100, ge=1, le=1000, description="events per screening task")
    drain_interval_s: float = Field(1.0, gt=0, description="beat tick of the batcher")
    read_block_ms: int = Field(100, ge=1, description="how long one stream read waits")
    queue_batches_per_worker: int = Field(
        2, ge=1, description="batches queued per live worker before the batcher holds back"
    )
    queue_poll_ms: int = Field(
        20,
        ge=1,
        description="how often the batcher looks again while each worker of the chosen queue "
        "has a batch waiting and fewer than BATCH_SIZE events are unread",
    )
    reclaim_interval_s: float = Field(5.0, gt=0, description="beat tick of the reclaimer")
    reclaim_idle_s: float = Field(
        60.0, gt=0, description="a pending entry idle this long is taken from its worker"
    )
    max_deliveries: int = Field(3, ge=1, description="deliveries before an entry is dead-lettered")
    decision_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="how long lookups find decisions")
    stream_keep_s: int = Field(3600, ge=0, description="acknowledged entries kept this long")
    decision_stream_maxlen: int = Field(
        100_000,
        ge=1,
        description="entries the high- and low-risk streams keep (more while a group has not "
        "read them)",
    )
    worker_heartbeat_s: float = Field(5.0, gt=0, description="how often workers say they are alive")
    task_visibility_timeout_s: int = Field(
        3600, ge=60, description="a Redis broker redelivers an unacknowledged task after this long"
    )
    screen_sync_timeout_s: float = Field(10.0, gt=0, description="POST /v1/screen waits this long")
    screen_sync_max_texts: int = Field(100, ge=1, le=1000)
    worker_metrics_port: int = Field(
        9100, ge=0, le=65535, description="where a worker host serves /metrics; 0 turns it off"
    )
    worker_metrics_host: str = Field("127.0.0.1", description="address the worker metrics bind")
    worker_metrics_dir: Path | None = Field(
        None, description="where worker processes write metrics; <VAR_DIR>/prometheus by default"
    )
    flower_basic_auth: str | None = Field(
        None, description="user:password for Flower; generated and printed once when unset"
    )
    flower_basic_auth_file: Path | None = Field(
        None, description="a file whose first line is Flower's user:password (a mounted secret)"
    )
    flower_port: int = Field(5555, ge=1, le=65535)
    # Archive (PostgreSQL), moderator reviews, user history
    database_url: str | None = Field(
        None, description="PostgreSQL of the decision archive; unset: no archive"
    )
    archive_retention_days: int = Field(
        400, ge=1, description="monthly partitions wholly older than this are dropped"
    )
    archive_interval_s: float = Field(1.0, gt=0, description="beat tick of the archiver")
    archive_batch_size: int = Field(500, ge=1, le=5000, description="rows per archive write")
    review_propagation_s: float = Field(
        5.0, ge=0, description="longest a screening worker goes without applying new reviews"
    )
    # The moderators' console (/console/)
    console_secret_key: str | None = Field(
        None,
        description="signs the console's session cookies; unset: derived from API_KEYS, so "
        "every web worker agrees and rotating the keys ends every session",
    )
    console_cookie_secure: bool | None = Field(
        None, description="send the session cookie over HTTPS only; unset: when the request is"
    )
    console_session_hours: float = Field(12.0, gt=0, description="how long a sign-in lasts")
    console_refresh_s: float = Field(
        5.0, gt=0, description="how often the queue page looks for new decisions"
    )
    chaos_poison_marker: str | None = Field(
        default=None,
        description="fault injection for tests and game days: screening raises on any event "
        "whose content contains this text; unset in production",
    )
    chaos_slow_marker: str | None = Field(
        default=None,
        description="fault injection: a batch holding this text takes CHAOS_SLOW_S longer",
    )
    chaos_slow_s: float = Field(5.0, ge=0)

    log_level: str = "INFO"

    @field_validator("api_keys", "redis_cluster_nodes", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        """Read API_KEYS and REDIS_CLUSTER_NODES as comma-separated lists."""
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _check_nodes(cls, nodes: list[str]) -> list[str]:
        """Each cluster node is host:port."""
        for node in nodes:
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"REDIS_CLUSTER_NODES: {node!r} is not host:port")
        return nodes

    @property
    def effective_api_keys(self) -> list[str]:
        """The configured keys, or the development key when none are configured."""
        return self.api_keys or [DEV_API_KEY]

    @property
    def using_dev_key(self) -> bool:
        """Whether the service falls back to the development key."""
        return not self.api_keys
