"""What the ingest stream owes: its unprocessed backlog, and the outcome ledger.

Every accepted event ends in exactly one of high, low or dead-letter, and until then it is in
flight: unread by the consumer group, or read and pending. The counters move inside the same
Lua scripts as the stream operations, so `accepted = high + low + dead-lettered + in flight`
holds at every instant; `read_ledger` reads all of it in one transaction. A dead-lettered event
sent back for screening (core.stream.deadletters) is in flight again: it leaves the dead-lettered
term (dead-letterings minus replays) for the in-flight one in the same script that re-queues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from core.errors import StoreUnavailable
from core.keys import OUTCOMES, Keys
from core.stream.entries import text


def unprocessed(length: int, groups: Sequence[dict[Any, Any]] | Exception, group: str) -> int:
    """Entries not yet processed: the group's lag plus its pending entries.

    `groups` is the XINFO GROUPS reply, or the error it gave when the stream does not exist
    (nothing is unprocessed then). Before the group exists, every entry is unprocessed.
    """
    if isinstance(groups, Exception):
        return 0
    for info in groups:
        if text(info["name"]) == group:
            lag = info.get("lag")
            # lag is nil when Redis cannot tell (after deletions); count the whole stream.
            unread = length if lag is None else int(lag)
            return unread + int(info["pending"])
    return length


@dataclass(frozen=True, slots=True)
class Ledger:
    """An atomic snapshot of the outcome counters."""

    accepted: int
    high: int
    low: int
    dead_lettered: int  # in the dead-letter stream now: dead-letterings minus replays
    in_flight: int
    replayed: int = 0  # sent back from the dead-letter stream, ever

    @property
    def balanced(self) -> bool:
        """Whether every accepted event is accounted for."""
        return self.accepted == self.high + self.low + self.dead_lettered + self.in_flight


def read_ledger(client: redis.Redis, keys: Keys) -> Ledger:
    """Read every counter and the in-flight count in one transaction."""
    try:
        pipe = client.pipeline(transaction=True)
        for outcome in OUTCOMES:
            pipe.get(keys.counter(outcome))
        pipe.xlen(keys.ingest_stream)
        pipe.xinfo_groups(keys.ingest_stream)
        *counts, length, groups = pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        raise StoreUnavailable(f"could not read the ledger: {exc}") from exc
    size = 0 if isinstance(length, Exception) else int(length)
    accepted, high, low, dlq, replayed = (
        int(c) if c and not isinstance(c, Exception) else 0 for c in counts
    )
    return Ledger(
        accepted, high, low, dlq - replayed, unprocessed(size, groups, keys.group), replayed
    )
