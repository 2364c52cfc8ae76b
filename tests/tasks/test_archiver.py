"""The archiver's loop (`tasks.archiver.drain`) on a real Redis and PostgreSQL: it acknowledges
an entry only after its row is committed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text

from core.archive import ArchiveUnavailable, DecisionWriter
from core.keys import Keys
from core.stream import ArchiveFeed
from tasks.archiver import drain
from tests.factories import entry_fields, now, stream_id_at


class FailingOnce:
    """The real writer, except that its `fail_at`-th write fails (PostgreSQL gone mid-run)."""

    def __init__(self, writer: DecisionWriter, fail_at: int) -> None:
        self.writer, self.fail_at, self.calls = writer, fail_at, 0

    def write(self, rows: Sequence[dict[str, Any]]) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ArchiveUnavailable("connection lost")
        return self.writer.write(rows)


def queue_decisions(client: redis.Redis, count: int) -> None:
    """`count` low-risk decisions on the low stream, as the decide step writes them."""
    start = now() - timedelta(minutes=5)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        moment = start + timedelta(milliseconds=i)
        fields = entry_fields(f"e-{i}", accepted=moment)
        fields["stream_id"] = stream_id_at(moment)
        pipe.xadd(Keys().low_stream, fields)  # type: ignore[arg-type]
    pipe.execute()


def archived(archive: Engine) -> list[str]:
    """Every archived event id, with repeats if any."""
    with archive.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT event_id FROM decisions"))]


def test_a_failed_write_acknowledges_nothing_of_its_batch_and_the_next_run_archives_it_once(
    redis_client: redis.Redis, archive: Engine
) -> None:
    queue_decisions(redis_client, 50)
    feed = ArchiveFeed(redis_client)
    feed.ensure_groups()
    writer = DecisionWriter(archive)
    with pytest.raises(ArchiveUnavailable):
        drain(feed, FailingOnce(writer, fail_at=3), 10, time.monotonic() + 60)  # type: ignore[arg-type]
    done = len(archived(archive))
    assert done == 20  # the two batches before the failure, committed and acknowledged
    assert feed.lag_seconds() > 0  # the failed batch is still pending
    assert drain(feed, writer, 10, time.monotonic() + 60) == {"low": 30}
    ids = archived(archive)
    assert sorted(ids) == sorted(f"e-{i}" for i in range(50))  # each exactly once
    assert feed.lag_seconds() == 0
    assert feed.read("archiver", 10, pending=True) == []
