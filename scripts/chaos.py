"""`make chaos`: restart Redis (after an append-only rewrite) and kill every process kind under
load on a supervised local system, then check that it healed itself (see devtools.chaos).

Prints what happened, then the figures as JSON; exits 1 when a check failed. The run has its
own Redis and logs in a fresh directory under var/ (printed), and shares the built index.
"""

from __future__ import annotations

import argparse
import sys

from devtools.chaos import GameDay, fresh_var
from devtools.stack import ROOT


def say(message: str) -> None:
    """Write one line of the run's story."""
    sys.stdout.write(f"[chaos] {message}\n")
    sys.stdout.flush()


def main() -> int:
    """Run the game day and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=3, help="Redis restarts (default 3)")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second sent")
    parser.add_argument("--phase", type=float, default=20.0, help="seconds between faults")
    parser.add_argument(
        "--no-memory-ceiling",
        action="store_true",
        help="skip the fault that holds Redis at its memory ceiling for a phase",
    )
    options = parser.parse_args()
    var = fresh_var(ROOT / "var")
    say(f"a system of its own under {var} (logs in {var / 'logs'})")
    day = GameDay(
        var,
        var / "logs",
        say,
        restarts=options.restarts,
        memory_ceiling=not options.no_memory_ceiling,
        rate_per_s=options.rate,
        phase_s=options.phase,
    )
    report = day.run()
    for check, held in report.checks.items():
        say(f"{'ok  ' if held else 'FAIL'} {check}")
    say(
        f"{report.events_sent} events sent, {report.events_accepted} accepted, "
        f"{report.decided_high} high + {report.decided_low} low + {report.dead_lettered} "
        f"dead-lettered; {report.redis_restarts} Redis restarts, kills: "
        f"{', '.join(report.kills)}; memory ceiling held {report.memory_ceiling_s} s "
        f"(/readyz {report.readyz_at_ceiling}); {report.seconds} s"
    )
    sys.stdout.write(report.to_json() + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
