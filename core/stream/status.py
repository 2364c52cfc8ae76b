"""How far behind the consumer group is: backlog, pending, the oldest unprocessed entry, DLQ;
and how full Redis is: the decision streams' lengths and its memory against its ceiling.

Read at each metrics scrape (tasks.metrics.pipeline). The age of the oldest unprocessed entry is the
one number that says how late decisions are, whatever the throughput: it is the older of the
oldest pending entry (read, not yet decided) and the first entry after the group's
last-delivered id (not yet read). Stream ids are the milliseconds Redis added them at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.entries import text
from core.stream.ledger import LedgerReader


def id_ms(stream_id: str) -> int:
    """The millisecond part of a stream id."""
    return int(stream_id.partition("-")[0])


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A snapshot of the ingest stream as the consumer group sees it."""

    length: int
    unprocessed: int
    pending: int
    oldest_unprocessed_ms: int | None
    dead_letters: int
    high: int = 0  # entries in the high-risk stream now
    low: int = 0  # entries in the low-risk stream now
    memory_used: int = 0  # bytes Redis holds
    memory_max: int = 0  # its maxmemory ceiling; 0 when it has none

    def oldest_age_s(self, now_ms: int) -> float:
        """Seconds the oldest unprocessed entry has waited (0 when there is none)."""
        if self.oldest_unprocessed_ms is None:
            return 0.0
        return max(0.0, (now_ms - self.oldest_unprocessed_ms) / 1000)


def _group(groups: Any, name: str) -> dict[Any, Any] | None:
    """This group's XINFO GROUPS entry, if the stream and group exist."""
    if isinstance(groups, Exception):
        return None
    for info in groups:
        if text(info["name"]) == name:
            return dict(info)
    return None


def read_status(client: Client, keys: Keys) -> StreamStatus:
    """Read the stream's backlog, pending count, oldest unprocessed entry and DLQ length."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xlen(keys.ingest_stream)
        pipe.xinfo_groups(keys.ingest_stream)
        pipe.xpending(keys.ingest_stream, keys.group)
        pipe.xlen(keys.dlq_stream)
        pipe.xlen(keys.high_stream)
        pipe.xlen(keys.low_stream)
        if not isinstance(client, RedisCluster):  # a cluster pipeline refuses INFO
            pipe.info("memory")
        length, groups, pending, dead, high, low, *more = pipe.execute(raise_on_error=False)
        if isinstance(client, RedisCluster):
            memory = _master_memory(client, keys.ingest_stream)
        else:
            memory = more[0]
        group = _group(groups, keys.group)
        # The first entry not yet delivered to the group (the whole stream before it exists).
        after = "-" if group is None else f"({text(group['last-delivered-id'])}"
        unread = client.xrange(keys.ingest_stream, min=after, max="+", count=1)
    except redis.RedisError as exc:
        raise StoreUnavailable(f"could not read the stream's status: {exc}") from exc
    size = _count(length)
    # Counted from the stream, as the ledger does: XINFO GROUPS' lag can be false (see there).
    backlog = LedgerReader(client, keys).backlog()
    pending_count, candidates = 0, []
    if isinstance(pending, dict) and pending.get("pending"):
        pending_count = int(pending["pending"])
        candidates.append(id_ms(text(pending["min"])))
    if unread:
        candidates.append(id_ms(text(unread[0][0])))
    return StreamStatus(
        length=size,
        unprocessed=backlog,
        pending=pending_count,
        oldest_unprocessed_ms=min(candidates) if candidates else None,
        dead_letters=_count(dead),
        high=_count(high),
        low=_count(low),
        memory_used=0 if isinstance(memory, Exception) else int(memory.get("used_memory", 0)),
        memory_max=0 if isinstance(memory, Exception) else int(memory.get("maxmemory", 0)),
    )


def _master_memory(client: RedisCluster, key: str) -> Any:
    """INFO memory of the master holding `key` (an exception, as a pipeline reports it, when
    it does not answer)."""
    try:
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return client.info("memory", target_nodes=node)
    except redis.RedisError as exc:
        return exc


def _count(reply: Any) -> int:
    """A length from a pipelined reply, 0 where the command failed."""
    return 0 if isinstance(reply, Exception) else int(reply)
