"""Every Redis key and stream name the service uses, in one place.

All names derive from three settings: the key prefix (`KEY_PREFIX`), the ingest stream
(`INGEST_STREAM`) and its consumer group (`CONSUMER_GROUP`). Keys that a Lua script touches
together are passed to it as KEYS. On a Redis Cluster (`REDIS_CLUSTER_NODES`) the stream layer
is split into `INGEST_SHARDS` shards: `Keys.shard` puts every name of a shard (its ingest
stream, dedup and decision records, decision and dead-letter streams, counters, user history)
under the shard's hash tag, so every script runs within one slot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Literal

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

if TYPE_CHECKING:
    from core.settings import Settings

# Counters of the ledger. "dlq" counts every dead-lettering and "replayed" every event sent back
# from the dead-letter stream, so both only grow and their difference is what the DLQ holds.
Outcome = Literal["accepted", "high", "low", "dlq", "replayed"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "high", "low", "dlq", "replayed")


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of one deployment's streams, records, counters and caches."""

    prefix: str = "events"
    ingest_stream: str = "events:ingest"
    group: str = "screeners"

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        """The names a deployment configured."""
        return cls(settings.key_prefix, settings.ingest_stream, settings.consumer_group)

    def shard(self, index: int, count: int) -> Keys:
        """The names of stream shard `index` of `count` on a Redis Cluster: every name under
        the shard's hash tag, so each script of the shard touches keys of one slot only."""
        tag = "{" + shard_tag(index, count) + "}"
        return replace(
            self, prefix=f"{tag}:{self.prefix}", ingest_stream=f"{tag}:{self.ingest_stream}"
        )

    # ------------------------------------------------------------------ streams

    @property
    def high_stream(self) -> str:
        """Stream of high-risk decisions, for moderators."""
        return f"{self.prefix}:risk:high"

    @property
    def low_stream(self) -> str:
        """Stream of low-risk decisions."""
        return f"{self.prefix}:risk:low"

    @property
    def dlq_stream(self) -> str:
        """Stream of events that could not be screened after every retry."""
        return f"{self.prefix}:dlq"

    @property
    def labels_stream(self) -> str:
        """Stream of moderators' labels that every screening worker applies to its examples."""
        return f"{self.prefix}:labels"

    @property
    def archive_group(self) -> str:
        """Consumer group of the archiver on the high, low and dead-letter streams."""
        return "archivers"

    # ------------------------------------------------------------------ per event

    def dedup(self, tenant: str, platform: str, event_id: str) -> str:
        """Idempotency record of one event identity: content hash, stream id, ingest time."""
        return f"{self.prefix}:dedup:{tenant}:{platform}:{event_id}"

    def decision(self, tenant: str, platform: str, event_id: str) -> str:
        """Outcome record of an event (its decision, or why it was dead-lettered), written by
        workers and read by the lookup API."""
        return f"{self.prefix}:decision:{tenant}:{platform}:{event_id}"

    def failure(self, stream_id: str) -> str:
        """Why screening an ingest entry last failed, for its dead-letter record."""
        return f"{self.prefix}:failure:{stream_id}"

    # ------------------------------------------------------------------ counters

    @property
    def ingest_sequence(self) -> str:
        """How many entries were ever added to the ingest stream; each entry's `seq` field is
        this count once it is added (every script that adds an entry moves it)."""
        return f"{self.prefix}:count:ingest-seq"

    def counter(self, outcome: Outcome) -> str:
        """Ledger counter of an outcome: accepted, high, low, dlq or replayed."""
        return f"{self.prefix}:count:{outcome}"

    @property
    def tenant_in_flight(self) -> str:
        """Hash of each tenant's accepted events not yet decided or dead-lettered; it moves in
        the same scripts as the ledger's counters, so per-tenant admission reads it exactly."""
        return f"{self.prefix}:count:in-flight-by-tenant"

    # ------------------------------------------------------------------ per user

    def user_posts(self, tenant: str, platform: str, user_id: str) -> str:
        """Sorted set of a user's recently decided events, scored by acceptance time (ms)."""
        return f"{self.prefix}:history:{tenant}:{platform}:posts:{user_id}"

    def user_high_risk(self, tenant: str, platform: str, user_id: str) -> str:
        """Sorted set of a user's high-risk decisions of the last day, scored likewise."""
        return f"{self.prefix}:history:{tenant}:{platform}:high:{user_id}"

    # ------------------------------------------------------------------ front door

    @property
    def readiness_probe(self) -> str:
        """A short-lived key /readyz writes: ready means Redis still takes writes (it refuses
        them at its memory ceiling, and on a read-only replica)."""
        return f"{self.prefix}:readyz"

    def rate_bucket(self, key_digest: str) -> str:
        """Token bucket of one API key (named by a digest: the key never reaches Redis)."""
        return f"{self.prefix}:rate:{key_digest}"

    def sync_request(self, token: str) -> str:
        """What a synchronous screening request asks a worker to screen (its texts live here,
        not in the task, so the broker never holds them)."""
        return f"{self.prefix}:sync-request:{token}"

    def sync_reply(self, token: str) -> str:
        """List a synchronous screening request waits on for its worker's answer."""
        return f"{self.prefix}:sync:{token}"

    # ------------------------------------------------------------------ workers

    @property
    def worker_queues(self) -> str:
        """Set of every queue a worker has announced."""
        return f"{self.prefix}:worker-queues"

    def workers(self, queue: str) -> str:
        """Sorted set of the workers consuming a queue, scored by their last heartbeat."""
        return f"{self.prefix}:workers:{queue}"

    # ------------------------------------------------------------------ screening

    @property
    def repeat(self) -> str:
        """Prefix of the repeated-content counters (HyperLogLogs per content and window)."""
        return f"{self.prefix}:repeat"

    def embeddings(self, model: str) -> str:
        """Prefix of the cached vectors of one embedding model."""
        return f"{self.prefix}:emb:{model}"


# ---------------------------------------------------------------------- Redis Cluster shards
# Candidate tags tried per shard: with 4096 the nearest lands within a few slots of its target
# (8 shards: 3 slots at most), far closer than any master's range is wide.
_TAG_CANDIDATES = 4096


@cache
def shard_tag(index: int, count: int) -> str:
    """The hash tag of shard `index` of `count`: `s<index>`, or `s<index>.<j>`.

    A master serves a contiguous range of slots (`redis-cli --cluster create` splits the 16384
    slots into equal ranges), so shards spread evenly over the masters when their slots spread
    evenly over the slot space: shard k aims at slot (k + 1/2) * 16384 / count, and its tag is
    the candidate (`s<k>`, then `s<k>.1`, `s<k>.2`, ...) whose CRC16 slot (what CLUSTER KEYSLOT
    answers) is nearest that target. With 8 shards on 3 masters that is 3 + 3 + 2 shards.
    """
    target = (2 * index + 1) * REDIS_CLUSTER_HASH_SLOTS // (2 * count)
    candidates = [f"s{index}"] + [f"s{index}.{j}" for j in range(1, _TAG_CANDIDATES)]
    return min(candidates, key=lambda tag: abs(key_slot(tag.encode()) - target))


def shard_of(tenant: str, platform: str, event_id: str, count: int) -> int:
    """The shard of an event identity: a stable hash of (tenant, platform, event id) mod count
    (the same in every process and release, unlike Python's salted hash())."""
    identity = f"{tenant}\x00{platform}\x00{event_id}".encode()
    return int.from_bytes(hashlib.blake2b(identity, digest_size=8).digest(), "big") % count
