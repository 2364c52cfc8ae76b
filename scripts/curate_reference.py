"""Build the shipped reference set from the shared labelled data: licence-filtered, deduplicated.

    python scripts/curate_reference.py [--shared ../shared/data]

Writes core/screening/data/reference/reference.csv.gz (id,text,label,source). Only sources
whose licence lets us redistribute the text are kept; ATTRIBUTION.md next to the file names
each one.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

from core.models import Category

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "core" / "screening" / "data" / "reference" / "reference.csv.gz"

# Redistributable sources, with why. Left out: hateval_tweeteval (no licence found), ghc (no
# licence for the snapshot), ethos (GPL-3.0 would bind this project's data), jigsaw_ibm_sample
# (CC BY-SA share-alike; 101 rows, a smoke test only). Every source stays usable for evaluation.
SHIPPED = {
    "davidson": "MIT",
    "olid": "CC BY 4.0 (host repository); citation requested",
    "sms_spam": "free use with attribution (UCI); citation requested",
    "surge_toxicity": "MIT",
    "openai_moderation": "MIT",
    "scamspot_instagram": "MIT",
    "tg_spam": "MIT",
    "edos": "CC0 1.0",
    "topical_chat": "CDLA-Sharing-1.0; citation requested",
}


def read_source(shared: Path, name: str) -> list[dict[str, str]]:
    """Rows of one source's normalised CSV."""
    path = shared / "raw" / name / f"{name}_normalized.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def curate(shared: Path) -> list[tuple[str, str, str, str]]:
    """The shipped rows as (id, text, label, source); a text seen twice is kept once."""
    seen: set[str] = set()
    rows = []
    for name in SHIPPED:
        for index, row in enumerate(read_source(shared, name)):
            text = row["text"].strip()
            key = " ".join(text.lower().split())
            if not text or key in seen:
                continue
            seen.add(key)
            rows.append((f"{name}:{index}", text, Category(row["label"]).value, name))
    return rows


def main() -> None:
    """Write the reference file and report its size per source and label."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    options = parser.parse_args()
    rows = curate(options.shared)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "label", "source"])
    writer.writerows(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical between runs, so git sees no change.
    with gzip.GzipFile(OUT, "wb", mtime=0) as handle:
        handle.write(buffer.getvalue().encode("utf-8"))
    counts: dict[tuple[str, str], int] = {}
    for _id, _text, label, source in rows:
        counts[source, label] = counts.get((source, label), 0) + 1
    for (source, label), n in sorted(counts.items()):
        sys.stdout.write(f"{source:<20}{label:<22}{n:>7}\n")
    sys.stdout.write(f"{len(rows)} rows -> {OUT.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
