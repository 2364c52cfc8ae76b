"""The documentation: README.md is a front page, docs/ holds the rest, and no relative link is dead.

A relative link is dead when its file is not in the repository or its `#anchor` names no
heading of the page it points to; anchors are the slugs GitHub gives headings. Absolute links
(http, https, mailto) are not followed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

from core.settings import Settings
from tests.factories import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
FRONT_PAGE_BYTES = 12 * 1024

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
_HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.I)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def pages(root: Path = ROOT) -> list[Path]:
    """The documentation pages: the README and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def _without_fences(text: str) -> str:
    """The text with fenced code blocks removed: what they hold is neither heading nor link."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page defines: its headings' slugs (a repeated one gets -1, -2, ...)."""
    text = _without_fences(page.read_text())
    seen: Counter[str] = Counter()
    found = set(_HTML_ANCHOR.findall(text))
    for heading in _HEADING.findall(text):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(page: Path) -> list[str]:
    """The targets of a page's inline links, outside code."""
    return _LINK.findall(_CODE_SPAN.sub("", _without_fences(page.read_text())))


def _resolves(page: Path, target: str, root: Path) -> bool:
    """Whether a relative link names a path in the repository and, into a page, an anchor of it."""
    path, _, anchor = target.partition("#")
    linked = (page.parent / unquote(path)).resolve() if path else page
    if not linked.is_relative_to(root.resolve()) or not linked.exists():
        return False
    return not anchor or linked.suffix != ".md" or unquote(anchor) in anchors(linked)


def dead_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a page whose file is not in the repository or whose anchor is not."""
    return [t for t in links(page) if not _SCHEME.match(t) and not _resolves(page, t, root)]


def test_no_page_has_a_dead_relative_link() -> None:
    dead = {page.relative_to(ROOT).as_posix(): dead_links(page) for page in pages()}
    assert {page: targets for page, targets in dead.items() if targets} == {}


def test_the_link_check_finds_a_missing_file_a_missing_anchor_and_a_link_outside(
    tmp_path: Path,
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Step one\n")
    (tmp_path / "README.md").write_text(
        "# Front\n\n[ok](docs/guide.md#step-one) [self](#front) [web](https://example.com/x)\n"
        "[gone](docs/missing.md) [no anchor](docs/guide.md#step-two) [outside](../elsewhere.md)\n"
        "[here](#nowhere) `[in code](docs/missing.md)`\n\n```\n[fenced](docs/missing.md)\n```\n"
    )
    (tmp_path.parent / "elsewhere.md").write_text("# Elsewhere\n")
    assert dead_links(tmp_path / "README.md", tmp_path) == [
        "docs/missing.md",
        "docs/guide.md#step-two",
        "../elsewhere.md",
        "#nowhere",
    ]


def test_anchors_are_githubs_heading_slugs_with_numbered_repeats(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# The HTTP API (v1)\n## Game day (`make chaos`)\n## The sender's history\n"
        "## `DATABASE_URL` and [links](x.md)\n## Notes\n## Notes\n## Notes\n"
        "```\n# not a heading\n```\n"
    )
    assert anchors(page) == {
        "the-http-api-v1",
        "game-day-make-chaos",
        "the-senders-history",
        "database_url-and-links",
        "notes",
        "notes-1",
        "notes-2",
    }


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README)}
    assert [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked] == []


def test_the_readme_stays_a_front_page() -> None:
    assert len(README.read_bytes()) <= FRONT_PAGE_BYTES


def test_every_setting_is_documented_in_the_configuration_page() -> None:
    text = CONFIGURATION.read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []
