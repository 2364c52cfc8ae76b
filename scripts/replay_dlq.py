"""`make replay-dlq`: send dead-lettered events back through screening, once each.

Fix what made them fail first (the reasons are listed with `--list`). Each event goes back on
the ingest stream as a new entry, so the running pipeline screens it like any other; the ledger
stays balanced (see core.stream.deadletters). Prints ids and reasons, never message content.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from core.errors import StoreUnavailable
from core.settings import Settings
from core.stream import DeadLetters
from core.stream.connection import connect_streams
from core.stream.shards import ShardedLedger, ShardLayout, replay_all


def main() -> int:
    """List or replay the dead-letter stream; 2 when Redis is unreachable."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="replay at most this many")
    parser.add_argument("--list", action="store_true", help="only list reasons and counts")
    options = parser.parse_args()
    settings = Settings()
    layout = ShardLayout.from_settings(settings)  # one shard on one Redis
    client = connect_streams(settings, 5.0)
    try:
        if options.list:
            reasons: Counter[str] = Counter()
            for keys in layout.all_keys():
                letters, cursor = DeadLetters(client, keys), "-"
                while batch := letters.oldest(500, cursor):
                    reasons.update(letter.reason[:120] for letter in batch)
                    cursor = f"({batch[-1].dlq_id}"
            for reason, count in reasons.most_common():
                sys.stdout.write(f"{count:8d}  {reason}\n")
            sys.stdout.write(f"{sum(reasons.values())} dead-lettered event(s)\n")
            return 0
        replayed = replay_all(client, layout, limit=options.limit)
        ledger = ShardedLedger(client, layout).ledger()
    except StoreUnavailable as exc:
        sys.stderr.write(f"cannot reach Redis at {settings.redis_url}: {exc}\n")
        return 2
    sys.stdout.write(
        f"sent {replayed.count} dead-lettered event(s) back for screening; "
        f"{ledger.dead_lettered} still dead-lettered, {ledger.in_flight} in flight; "
        f"ledger {'balanced' if ledger.balanced else 'UNBALANCED'}\n"
    )
    return 0 if ledger.balanced else 1


if __name__ == "__main__":
    sys.exit(main())
