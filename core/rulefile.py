"""Reading and checking a rules file: each [[rules]] table's fields, typed and checked with
errors that name the rule and field; the word-list placeholders and allow lists compiled from
them; and the file stamps and version hash that hot reload relies on.

Which matcher a `kind` builds is not known here: `RuleSpec.build` is handed that registry
(core.matchers.KINDS), so this module stays below the matchers it configures.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError
from core.models import Category

_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PLACEHOLDER = re.compile(r"\{\{([a-z][a-z0-9_]*)\}\}")

Source = tuple[bytes, tuple[int, int] | None]  # a file's content and its stamp before reading
_Built = TypeVar("_Built")  # what a kind's constructor builds

_COMMON_FIELDS = {"id", "category", "weight", "kind", "description", "enabled", "allow"}
_KIND_FIELDS: dict[str, set[str]] = {
    "regex": {"patterns", "lists", "field", "require", "min_matches"},
    "wordlist": {"words", "files", "inflect", "min_matches"},
    "caps_ratio": {"min_ratio", "min_letters"},
    "char_run": {"min_run"},
    "punct_run": {"min_run", "chars"},
    "mention_count": {"min_count"},
    "emoji_count": {"min_count"},
    "mixed_script": {"min_count"},
    "repeat_across_senders": {"min_senders", "min_length", "window_s"},
}


class RuleSpec:
    """One [[rules]] table being checked: typed access to its fields, errors that name them."""

    def __init__(self, path: Path, index: int, raw: Any, sources: dict[Path, Source]) -> None:
        self.path = path
        self.sources = sources
        self.rule_id = f"#{index + 1}"
        if not isinstance(raw, dict):
            raise self.error("", "must be a table")
        self.raw: dict[str, Any] = raw
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            raise self.error("id", "must be lower-case letters, digits and _ (at most 64)")
        self.rule_id = rule_id

    def error(self, field: str, problem: str) -> ConfigError:
        """Build the ConfigError for a field of this rule."""
        where = f"field {field!r} " if field else ""
        return ConfigError(f"{self.path}: rule {self.rule_id!r}: {where}{problem}")

    def build(self, kinds: dict[str, Callable[[RuleSpec], _Built]]) -> _Built | None:
        """Check the kind and fields and build the rule with its kind's constructor from
        `kinds`; None when it is disabled."""
        kind = self.raw.get("kind")
        if kind not in kinds:
            raise self.error("kind", f"must be one of {sorted(kinds)}, not {kind!r}")
        unknown = set(self.raw) - _COMMON_FIELDS - _KIND_FIELDS[kind]
        if unknown:
            raise self.error(sorted(unknown)[0], f"is not a field of a {kind} rule")
        if not self.boolean("enabled", default=True):
            return None
        return kinds[kind](self)

    def category(self) -> Category:
        """Read `category`: a harmful Category value."""
        value = self.raw.get("category")
        try:
            category = Category(value if isinstance(value, str) else repr(value))
        except ValueError:
            raise self.error("category", f"unknown category {value!r}") from None
        if category is Category.LOW_RISK:
            raise self.error("category", "a rule cannot flag LOW_RISK")
        return category

    def weight(self) -> float:
        """Read `weight`: a number from 0 to 1."""
        if "weight" not in self.raw:
            raise self.error("weight", "is required")
        return self.number("weight", default=0.0, low=0.0, high=1.0)

    def number(self, field: str, default: float, low: float, high: float) -> float:
        """Read a number within [low, high]."""
        value = self.raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.error(field, f"must be between {low} and {high}, not {value}")
        return float(value)

    def integer(self, field: str, default: int, minimum: int) -> int:
        """Read an integer of at least minimum."""
        value = self.raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"must be an integer, not {value!r}")
        if value < minimum:
            raise self.error(field, f"must be at least {minimum}, not {value}")
        return value

    def boolean(self, field: str, default: bool) -> bool:
        """Read true or false."""
        value = self.raw.get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"must be true or false, not {value!r}")
        return value

    def string(self, field: str, default: str) -> str:
        """Read a non-empty string."""
        value = self.raw.get(field, default)
        if not isinstance(value, str) or not value:
            raise self.error(field, f"must be a non-empty string, not {value!r}")
        return value

    def choice(self, field: str, options: tuple[str, ...], default: str) -> str:
        """Read one of a few strings."""
        value = self.raw.get(field, default)
        if value not in options:
            raise self.error(field, f"must be one of {list(options)}, not {value!r}")
        return str(value)

    def str_list(self, field: str, required: bool = True) -> list[str]:
        """Read a list of non-empty strings (required: and at least one)."""
        value = self.raw.get(field)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(field, "must be a list of non-empty strings")
        if required and not value:
            raise self.error(field, "must not be empty")
        return value

    def table(self, field: str) -> list[tuple[str, Any]]:
        """Read an optional table as (key, value) pairs."""
        value = self.raw.get(field, {})
        if not isinstance(value, dict):
            raise self.error(field, 'must be a table such as { name = "wordlists/x.txt" }')
        return list(value.items())

    def words(self, value: Any, field: str) -> list[str]:
        """Read words given inline (a list) or as a file name relative to the rules file."""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value if v.strip()]
        if not isinstance(value, str):
            raise self.error(field, "must be a word-list file name or a list of words")
        file = (self.path.parent / value).resolve()
        try:
            if file not in self.sources:
                self.sources[file] = read(file)
            lines = self.sources[file][0].decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(field, f"cannot read word list {value!r} ({exc})") from exc
        return [w for w in (line.strip() for line in lines) if w and not w.startswith("#")]

    def compile(self, pattern: str, field: str, lower: bool) -> re.Pattern[str]:
        """Compile a pattern; on the original text matching ignores case."""
        try:
            return re.compile(pattern, 0 if lower else re.IGNORECASE)
        except re.error as exc:
            raise self.error(field, f"bad regular expression {pattern[:60]!r} ({exc})") from exc


def expand(pattern: str, lists: dict[str, list[str]], spec: RuleSpec) -> str:
    """Replace each {{name}} with a pattern that matches any entry of the named list."""

    def alternation(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in lists:
            raise spec.error("patterns", f"uses {{{{{name}}}}} but `lists` has no {name!r}")
        return _alternation(lists[name])

    return _PLACEHOLDER.sub(alternation, pattern)


def _alternation(entries: list[str]) -> str:
    """Build a group matching any entry (case-folded, any white space between words), shaped
    as a trie: re tries a flat list of hundreds of words one by one at every position of the
    text, a trie only along the letters actually there."""
    trie: dict[str, Any] = {}
    for entry in entries:
        node = trie
        for unit in re.findall(r"\s+|.", " ".join(entry.lower().split())):
            node = node.setdefault(r"\s+" if unit.isspace() else re.escape(unit), {})
        node[""] = {}  # an entry ends here
    return f"(?:{_trie_pattern(trie)})"


def _trie_pattern(node: dict[str, Any]) -> str:
    """Write one trie node as a pattern: longer continuations first, then the end."""
    branches = [unit + _trie_pattern(child) for unit, child in sorted(node.items()) if unit]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return body if "" not in node else f"(?:{body})?"


def allow_pattern(phrases: list[str]) -> re.Pattern[str] | None:
    """Compile an allow list into one pattern of whole phrases on the lower-cased text."""
    if not phrases:
        return None
    return re.compile(rf"(?<![^\W_]){_alternation(phrases)}(?![^\W_])")


def stat(path: Path) -> tuple[int, int] | None:
    """Return a file's modification time and size, to notice edits cheaply; None if missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


def read(path: Path) -> Source:
    """Read a file's bytes, stamping it first."""
    stamp = stat(path)
    return path.read_bytes(), stamp


def digest(sources: dict[Path, Source]) -> str:
    """Hash the rules file and every word list into a short version string."""
    hashed = hashlib.sha256()
    for path, (content, _) in sources.items():
        hashed.update(path.name.encode() + b"\0" + content + b"\0")
    return hashed.hexdigest()[:12]
