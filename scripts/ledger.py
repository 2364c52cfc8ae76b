"""`make ledger`: check on a live system that accepted = high + low + dead-lettered + in flight,
and that the archive holds every outcome.

Reads the counters and the in-flight count in one Redis transaction (per shard on a Redis
Cluster, summed) and prints them; with an
archive (DATABASE_URL), also the archived outcomes and the archive lag. Exits 1 when the Redis
ledger does not balance (an event was lost or decided twice), or when the pipeline and the
archiver are idle and the archive does not hold exactly the accepted events.
"""

from __future__ import annotations

import sys

from core.archive import ArchiveError, open_archive, totals_by_outcome
from core.errors import StoreUnavailable
from core.settings import Settings
from core.stream import ArchiveFeed, Ledger
from core.stream.connection import connect_streams
from core.stream.shards import ShardedLedger, ShardLayout


def archive_report(settings: Settings, ledger: Ledger, lag_s: float) -> bool:
    """Print the archive's outcomes; False when an idle system's archive misses or repeats any."""
    assert settings.database_url
    engine = open_archive(settings.database_url, pool_size=1)
    try:
        archived = totals_by_outcome(engine)
    except ArchiveError as exc:
        sys.stderr.write(f"cannot read the archive: {exc}\n")
        return False
    finally:
        engine.dispose()
    total = sum(archived.values())
    idle = ledger.in_flight == 0 and lag_s == 0
    matches = (archived["high"], archived["low"], archived["dlq"]) == (
        ledger.high,
        ledger.low,
        ledger.dead_lettered,
    )
    verdict = (
        "complete"
        if idle and matches and total == ledger.accepted
        else "INCOMPLETE"
        if idle
        else "catching up"
    )
    sys.stdout.write(
        f"archived {total} = high {archived['high']} + low {archived['low']} + "
        f"dead-lettered {archived['dlq']}  (accepted {ledger.accepted}, archive lag "
        f"{lag_s:.1f} s)  ->  {verdict}\n"
    )
    return verdict != "INCOMPLETE"


def main() -> int:
    """Print the ledger (and the archive); 0 when all holds, 1 when not, 2 when unreachable."""
    settings = Settings()
    client = connect_streams(settings, 5.0)
    layout = ShardLayout.from_settings(settings)  # one shard on one Redis; summed on a cluster
    try:
        ledger = ShardedLedger(client, layout).ledger()
        lag_s = max(ArchiveFeed(client, keys).lag_seconds() for keys in layout.all_keys())
    except StoreUnavailable as exc:
        sys.stderr.write(f"cannot read the ledger from {settings.redis_url}: {exc}\n")
        return 2
    total = ledger.high + ledger.low + ledger.dead_lettered + ledger.in_flight
    sys.stdout.write(
        f"accepted {ledger.accepted} = high {ledger.high} + low {ledger.low} + "
        f"dead-lettered {ledger.dead_lettered} + in flight {ledger.in_flight}"
        f"  ->  {'balanced' if ledger.balanced else f'UNBALANCED (right side {total})'}"
        f"  ({ledger.replayed} replayed from the dead-letter stream so far)\n"
    )
    archive_ok = archive_report(settings, ledger, lag_s) if settings.database_url else True
    return 0 if ledger.balanced and archive_ok else 1


if __name__ == "__main__":
    sys.exit(main())
