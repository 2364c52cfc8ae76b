"""`make export-reviews`: moderators' verdicts as a `text,label,source` CSV.

One row per reviewed event, with its latest verdict: the file `make eval DATA=...` measures the
engine on, and a reference set the training step (`REFERENCE_PATH`, `make index`) accepts.
Writes to OUT (default var/reviews.csv) and prints how many rows it wrote.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from core.archive import ArchiveError, export_rows, open_archive
from core.settings import Settings


def main() -> int:
    """Write the CSV; 2 when the archive cannot be read."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("var") / "reviews.csv")
    options = parser.parse_args()
    settings = Settings()
    if not settings.database_url:
        sys.stderr.write("DATABASE_URL is not set: there is no archive to export from\n")
        return 2
    engine = open_archive(settings.database_url, pool_size=1)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows = list(export_rows(engine))
    except ArchiveError as exc:
        sys.stderr.write(f"cannot read the archive: {exc}\n")
        return 2
    finally:
        engine.dispose()
    with options.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        writer.writerows(rows)
    sys.stdout.write(f"{len(rows)} reviewed examples written to {options.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
