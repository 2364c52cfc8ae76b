"""`make ledger`: check on a live system that accepted = high + low + dead-lettered + in flight.

Reads the counters and the in-flight count in one Redis transaction, prints them and exits 1
when they do not balance (an event was lost or decided twice).
"""

from __future__ import annotations

import sys

from core.errors import StoreUnavailable
from core.keys import Keys
from core.settings import Settings
from core.stream import connect, read_ledger


def main() -> int:
    """Print the ledger; 0 when it balances, 1 when it does not, 2 when Redis is unreachable."""
    settings = Settings()
    client = connect(settings.redis_url, 5.0)
    try:
        ledger = read_ledger(client, Keys.from_settings(settings))
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
    return 0 if ledger.balanced else 1


if __name__ == "__main__":
    sys.exit(main())
