"""The archiver's side of the decision streams: its consumer group on high, low and dead-letter.

The archiver reads entries through its own group (`Keys.archive_group`), so moderators' own
consumers are unaffected, and acknowledges them only after their rows are committed. Entries a
killed archiver read but never acknowledged stay pending on its consumer and are read again
first (`pending=True`), which is why the archive writes are upserts. The archive lag is the age
of the oldest entry the group has not acknowledged: pending, or not delivered yet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.entries import text

Outcome = Literal["high", "low", "dlq"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """One entry of a decision stream as the archiver received it."""

    outcome: Outcome
    entry_id: str
    fields: dict[str, str]


def _ms(entry_id: str) -> int:
    """The time part of a stream id."""
    return int(entry_id.partition("-")[0])


class ArchiveFeed:
    """The archive consumer group on the three outcome streams."""

    def __init__(self, client: Client, keys: Keys = Keys()) -> None:
        self.client = client
        self.keys = keys
        self.streams: dict[str, Outcome] = {
            keys.high_stream: "high",
            keys.low_stream: "low",
            keys.dlq_stream: "dlq",
        }

    def ensure_groups(self) -> None:
        """Create the group on each stream (from its first entry), and the streams, if missing."""
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.keys.archive_group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise StoreUnavailable(f"could not create the archive group: {exc}") from exc
            except redis.RedisError as exc:
                raise StoreUnavailable(f"could not create the archive group: {exc}") from exc

    def read(self, consumer: str, count: int, *, pending: bool = False) -> list[Delivered]:
        """Up to `count` entries per stream: new ones, or (pending) those read but never acked."""
        position = "0" if pending else ">"
        try:
            reply: Any = self.client.xreadgroup(
                self.keys.archive_group,
                consumer,
                dict.fromkeys(self.streams, position),
                count=count,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self.ensure_groups()
                return []
            raise StoreUnavailable(f"could not read the decision streams: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the decision streams: {exc}") from exc
        found = []
        for stream, entries in reply or []:
            outcome = self.streams[text(stream)]
            for entry_id, fields in entries:
                values = {text(k): text(v) for k, v in (fields or {}).items()}
                found.append(Delivered(outcome, text(entry_id), values))
        return found

    def ack(self, delivered: Sequence[Delivered]) -> None:
        """Acknowledge entries whose rows are committed."""
        by_stream: dict[str, list[str]] = {}
        names = {outcome: stream for stream, outcome in self.streams.items()}
        for item in delivered:
            by_stream.setdefault(names[item.outcome], []).append(item.entry_id)
        if not by_stream:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.keys.archive_group, *ids)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not acknowledge archived entries: {exc}") from exc

    def oldest_unarchived_ms(self) -> int | None:
        """When the oldest entry not yet archived was added (ms), or None when all are."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for stream in self.streams:
                pipe.xinfo_groups(stream)
                pipe.xpending(stream, self.keys.archive_group)
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the archive lag: {exc}") from exc
        oldest: list[int] = []
        for stream, groups, summary in zip(self.streams, replies[::2], replies[1::2], strict=True):
            if isinstance(groups, Exception):  # no such stream: nothing to archive there
                continue
            group = next((g for g in groups if text(g["name"]) == self.keys.archive_group), None)
            if not isinstance(summary, Exception) and summary and summary.get("pending"):
                oldest.append(_ms(text(summary["min"])))
            start = "-" if group is None else f"({text(group['last-delivered-id'])}"
            try:
                first: Any = self.client.xrange(stream, min=start, max="+", count=1)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"could not read the archive lag: {exc}") from exc
            if first:
                oldest.append(_ms(text(first[0][0])))
        return min(oldest) if oldest else None

    def lag_seconds(self, now: float | None = None) -> float:
        """Age of the oldest decision not yet archived, in seconds (0 when none is waiting)."""
        oldest = self.oldest_unarchived_ms()
        if oldest is None:
            return 0.0
        return max(0.0, (now if now is not None else time.time()) - oldest / 1000)
