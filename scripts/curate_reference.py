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
import html
import io
import re
import sys
from collections.abc import Callable
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
    "sbic_dev": "CC BY 4.0 (SBIC), host repository CC BY-SA 4.0; share-alike; citation requested",
}

# SBIC's preprocessing (GloVe-Twitter style) left placeholders, split contractions and spaces
# before punctuation in its Reddit jokes and Stormfront posts, and HTML entities in its tweets;
# traffic has none of them, so the shipped text is put back into the form people type.
_SBIC_AFTER_WORD = re.compile(r"(\S+)((?: <(?:allcaps|elong)>)+)")
_SBIC_REPEAT = re.compile(r"([.!?,*-]) <repeat>")
_SBIC_TAGS = {
    "<number>": "3",  # the number itself is lost; any digit reads like one
    "<url>": "URL",
    "<user>": "@USER",
    "<smile>": ":)",
    "<lolface>": ":P",
    "<sadface>": ":(",
    "<neutralface>": ":|",
    "<heart>": "<3",
    "<repeat>": "",
}
_SBIC_CONTRACTION = re.compile(r"(\w) (n't|'(?:s|m|re|ve|ll|d))\b", re.IGNORECASE)
_SBIC_SPACED_PUNCTUATION = re.compile(r"(?<=\S) +([.,!?;:]+)(?=\s|$)")


def undo_sbic_tokenisation(text: str) -> str:
    """An SBIC post as it was typed: entities, placeholders and split tokens put back."""
    # Reddit posts are escaped twice ("&amp;#x200B;", its empty-paragraph marker) and keep
    # Markdown's backslash escapes.
    text = html.unescape(html.unescape(text)).replace("\u200b", " ").replace("\\*", "*")
    text = _SBIC_AFTER_WORD.sub(
        lambda m: m.group(1).upper() if "allcaps" in m.group(2) else m.group(1), text
    )
    text = _SBIC_REPEAT.sub(lambda m: m.group(1) * 3, text)
    for tag, replacement in _SBIC_TAGS.items():
        text = text.replace(tag, replacement)
    text = _SBIC_CONTRACTION.sub(r"\1\2", text)
    text = _SBIC_SPACED_PUNCTUATION.sub(r"\1", text)
    return " ".join(text.split())


# How a source's text is cleaned before shipping; a source not named ships as normalised.
CLEANERS: dict[str, Callable[[str], str]] = {"sbic_dev": undo_sbic_tokenisation}


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
        clean = CLEANERS.get(name, str)
        for index, row in enumerate(read_source(shared, name)):
            text = clean(row["text"]).strip()
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
