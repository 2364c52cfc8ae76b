"""The stream layer split into shards on a Redis Cluster (REDIS_CLUSTER_NODES, INGEST_SHARDS).

Shard k is a whole single-Redis stream layer under one hash tag (`Keys.shard`): its ingest
stream and consumer group, the dedup and decision records of its events, its high, low and
dead-letter streams, its ledger counters and its senders' history. Every script of a shard
(ingest, decide, dead-letter, replay, ledger, trim) therefore touches one slot, and runs as
atomically as on one Redis. An event's shard is a stable hash of its identity (tenant,
platform, event id), so a retry meets its own dedup record, and a lookup knows where to look.

What spans shards is a sum or a walk: the ledger is the sum of the shards' ledgers (each read
atomically, each balanced, so the sum is balanced too); the backlog the front door admits
against is the sum, or `count` times the fullest shard when that is more, so a shard whose
consumers fall behind is refused at its own share of BACKLOG_MAX; a sender's history is the sum
of its counts in every shard; the batcher walks the shards in turn.

INGEST_SHARDS is fixed for a deployment's lifetime: changing it moves identities to other
shards, where their dedup records are not. The moderators' label stream, rate-limit buckets and
readiness probe are single keys and live wherever their slot puts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from core.keys import Keys, shard_of
from core.models import Event, EventState, Platform
from core.settings import Settings
from core.stream.connection import Client
from core.stream.consumer import ScreeningStream
from core.stream.deadletters import DeadLetters, Replayed
from core.stream.ingest import EventStream, IngestRequest, IngestResult
from core.stream.ledger import Backlog, Ledger, LedgerReader
from core.stream.status import StreamStatus, read_status


@dataclass(frozen=True, slots=True)
class ShardLayout:
    """How many shards a deployment has, and the names of each."""

    base: Keys
    count: int = 1
    clustered: bool = False  # False: one shard named as on one Redis, untagged

    @classmethod
    def from_settings(cls, settings: Settings) -> ShardLayout:
        """The layout configured: one untagged shard unless REDIS_CLUSTER_NODES is set."""
        keys = Keys.from_settings(settings)
        if settings.redis_cluster_nodes:
            return cls(keys, settings.ingest_shards, clustered=True)
        return cls(keys)

    def keys(self, index: int) -> Keys:
        """The names of shard `index`."""
        return self.base.shard(index, self.count) if self.clustered else self.base

    def all_keys(self) -> list[Keys]:
        """The names of every shard, in order."""
        return [self.keys(k) for k in range(self.count)]

    def shard_of(self, tenant: str, platform: str, event_id: str) -> int:
        """The shard an event identity belongs to."""
        return shard_of(tenant, platform, event_id, self.count)


class ShardedEventStream:
    """The front door's side of every shard: the same calls as `EventStream`."""

    def __init__(self, client: Client, layout: ShardLayout, window_s: int = 3600) -> None:
        self.layout = layout
        self.shards = [EventStream(client, keys, window_s) for keys in layout.all_keys()]
        self._ledger = ShardedLedger(client, layout)

    def ingest(
        self,
        events: Sequence[Event],
        request_id: str = "",
        traceparent: str = "",
        now_ms: int | None = None,
        *,
        tenant: str,
    ) -> list[IngestResult]:
        """Queue each event in its shard (one script per shard the batch touches), results in
        the order of `events`."""
        request = IngestRequest(events, tenant, request_id, traceparent)
        [results] = self.ingest_many([request], now_ms)
        return results

    def ingest_many(
        self, requests: Sequence[IngestRequest], now_ms: int | None = None
    ) -> list[list[IngestResult]]:
        """`ingest` for several requests, one script per shard they touch: each request's
        results, in order."""
        # shard -> (the requests' parts in that shard, where each part's results go)
        parts: dict[int, tuple[list[IngestRequest], list[list[tuple[int, int]]]]] = {}
        for r, request in enumerate(requests):
            split: dict[int, list[int]] = {}
            for i, event in enumerate(request.events):
                shard = self.layout.shard_of(request.tenant, event.platform, event.event_id)
                split.setdefault(shard, []).append(i)
            for shard, indices in split.items():
                part = IngestRequest(
                    [request.events[i] for i in indices],
                    request.tenant,
                    request.request_id,
                    request.traceparent,
                )
                shard_parts, places = parts.setdefault(shard, ([], []))
                shard_parts.append(part)
                places.append([(r, i) for i in indices])
        answers: list[list[IngestResult | None]] = [[None] * len(q.events) for q in requests]
        for shard, (shard_parts, places) in parts.items():
            found = self.shards[shard].ingest_many(shard_parts, now_ms)
            for results, where in zip(found, places, strict=True):
                for (r, i), result in zip(where, results, strict=True):
                    answers[r][i] = result
        return [[result for result in answer if result is not None] for answer in answers]

    def lookup(self, tenant: str, platform: Platform, event_id: str) -> EventState | None:
        """What is known of a tenant's event, from its shard."""
        shard = self.layout.shard_of(tenant, platform.value, event_id)
        return self.shards[shard].lookup(tenant, platform, event_id)

    def backlog(self) -> int:
        """Entries not yet processed, over every shard."""
        return self._ledger.ledger().in_flight

    def backlog_by_tenant(self) -> Backlog:
        """The backlog the front door admits against (see the module's docstring)."""
        return self._ledger.backlog_by_tenant()


class ShardedLedger:
    """The ledger and backlog of every shard, summed."""

    def __init__(self, client: Client, layout: ShardLayout) -> None:
        self.layout = layout
        self.readers = [LedgerReader(client, keys) for keys in layout.all_keys()]

    def by_shard(self) -> list[Ledger]:
        """Each shard's ledger, read atomically within the shard."""
        return [reader.ledger() for reader in self.readers]

    def ledger(self) -> Ledger:
        """The sum of the shards' ledgers: balanced when every shard is."""
        return sum_ledgers(self.by_shard())

    def backlog_by_tenant(self) -> Backlog:
        """Unprocessed events per tenant over every shard; the total is the sum, or `count`
        times the fullest shard when that is more (a shard is full at its share)."""
        total, fullest = 0, 0
        tenants: Counter[str] = Counter()
        for reader in self.readers:
            backlog = reader.backlog_by_tenant()
            total += backlog.total
            fullest = max(fullest, backlog.total)
            tenants.update(backlog.by_tenant)
        return Backlog(max(total, fullest * len(self.readers)), dict(tenants))


def sum_ledgers(ledgers: Sequence[Ledger]) -> Ledger:
    """Ledgers of several shards as one."""
    return Ledger(
        accepted=sum(x.accepted for x in ledgers),
        high=sum(x.high for x in ledgers),
        low=sum(x.low for x in ledgers),
        dead_lettered=sum(x.dead_lettered for x in ledgers),
        in_flight=sum(x.in_flight for x in ledgers),
        replayed=sum(x.replayed for x in ledgers),
    )


class ShardedScreening:
    """The consumer side of every shard: one `ScreeningStream` each, and what spans them."""

    def __init__(self, client: Client, layout: ShardLayout, settings: Settings) -> None:
        self.layout = layout
        self.shards = [
            ScreeningStream(
                client,
                keys,
                decision_ttl_s=settings.decision_ttl_s,
                max_deliveries=settings.max_deliveries,
            )
            for keys in layout.all_keys()
        ]
        self._next = 0

    def shard(self, index: int | None) -> ScreeningStream:
        """Shard `index`'s stream (None: the first, which is the only one on one Redis)."""
        return self.shards[index or 0]

    def turn(self) -> list[int]:
        """Every shard index once, starting one further along at each call, so shards that
        always have entries to read still take turns."""
        start = self._next
        self._next = (self._next + 1) % len(self.shards)
        return [(start + i) % len(self.shards) for i in range(len(self.shards))]

    def user_history(self, users: Sequence[tuple[str, str, str]]) -> list[tuple[int, int]]:
        """For each (tenant, platform, user id): high-risk decisions in the last day and
        decided events in the last minute, summed over the shards they were decided in."""
        totals = [(0, 0)] * len(users)
        for stream in self.shards:
            counts = stream.user_history(users)
            totals = [(h + dh, p + dp) for (h, p), (dh, dp) in zip(totals, counts, strict=True)]
        return totals

    def ledger(self) -> Ledger:
        """The sum of the shards' ledgers."""
        return sum_ledgers([stream.ledger() for stream in self.shards])


def replay_all(client: Client, layout: ShardLayout, limit: int | None = None) -> Replayed:
    """Send every shard's dead-lettered events back to that shard's ingest stream, once each."""
    sent: list[str] = []
    for keys in layout.all_keys():
        left = None if limit is None else limit - len(sent)
        if left is not None and left <= 0:
            break
        sent += DeadLetters(client, keys).replay(left).new_stream_ids
    return Replayed(sent)


def read_sharded_status(client: Client, layout: ShardLayout) -> StreamStatus:
    """The stream's status over every shard: counts summed, the oldest unprocessed entry of
    all, and the memory of the fullest master (several shards may share one)."""
    statuses = [read_status(client, keys) for keys in layout.all_keys()]
    if len(statuses) == 1:
        return statuses[0]
    oldest = [s.oldest_unprocessed_ms for s in statuses if s.oldest_unprocessed_ms is not None]
    fullest = max(statuses, key=lambda s: s.memory_used / s.memory_max if s.memory_max else 0.0)
    return StreamStatus(
        length=sum(s.length for s in statuses),
        unprocessed=sum(s.unprocessed for s in statuses),
        pending=sum(s.pending for s in statuses),
        oldest_unprocessed_ms=min(oldest) if oldest else None,
        dead_letters=sum(s.dead_letters for s in statuses),
        high=sum(s.high for s in statuses),
        low=sum(s.low for s in statuses),
        memory_used=fullest.memory_used,
        memory_max=fullest.memory_max,
    )
