"""The rules file's schema and reading: a pydantic model per matcher kind, errors that name the
rule and field, word lists and allow lists compiled from a rule's fields, and the file stamps
and version hash that hot reload relies on.

Which matcher a `kind` builds is not known here (core.screening.rules.ruleset holds that
registry), so this module stays below the matchers it configures.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from core.errors import ConfigError
from core.models import Category

_PLACEHOLDER = re.compile(r"\{\{([a-z][a-z0-9_]*)\}\}")
RULE_ID = r"^[a-z][a-z0-9_]{0,63}$"

Source = tuple[bytes, tuple[int, int] | None]  # a file's content and its stamp before reading
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
# Fields that once were in the file and now live elsewhere: say where.
_MOVED = {"window_s": "the window is the REPEAT_WINDOW_S setting"}


def _harmful(category: Category) -> Category:
    """A rule flags harm; LOW_RISK is what no rule firing means."""
    if category is Category.LOW_RISK:
        raise ValueError("a rule cannot flag LOW_RISK")
    return category


class _Rule(BaseModel):
    """The fields every [[rules]] table has, whatever its matcher."""

    # Strict: TOML has real booleans and numbers, so `weight = true` is a mistake, not a 1.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Annotated[str, StringConstraints(pattern=RULE_ID)]
    category: Annotated[Category, Field(strict=False), AfterValidator(_harmful)]
    weight: float = Field(ge=0, le=1, description="how strongly a hit alone suggests the category")
    description: str = ""
    enabled: bool = True
    allow: list[NonEmpty] = Field(default_factory=list, description="phrases that suppress a hit")


class RegexRule(_Rule):
    """Patterns on the lower-cased normalised text (or the original), {{name}} word lists."""

    kind: Literal["regex"]
    patterns: Annotated[list[NonEmpty], Field(min_length=1)]
    lists: dict[str, list[str] | NonEmpty] = Field(default_factory=dict)
    field: Literal["normalized", "original"] = "normalized"
    require: Literal["any", "all"] = "any"
    min_matches: int = Field(1, ge=1)


class WordListRule(_Rule):
    """Whole words and phrases, inline or from files next to the rules file."""

    kind: Literal["wordlist"]
    words: list[str] = Field(default_factory=list)
    files: list[NonEmpty] = Field(default_factory=list)
    inflect: bool = False
    min_matches: int = Field(1, ge=1)


class CapsRatioRule(_Rule):
    """Mostly capital letters in the original text."""

    kind: Literal["caps_ratio"]
    min_ratio: float = Field(0.7, ge=0, le=1)
    min_letters: int = Field(12, ge=1)


class CharRunRule(_Rule):
    """One letter repeated ("sooooo")."""

    kind: Literal["char_run"]
    min_run: int = Field(4, ge=3)


class PunctRunRule(_Rule):
    """Punctuation repeated ("!!!")."""

    kind: Literal["punct_run"]
    min_run: int = Field(3, ge=2)
    chars: NonEmpty = "!?"


class MentionCountRule(_Rule):
    """Many @mentions."""

    kind: Literal["mention_count"]
    min_count: int = Field(5, ge=1)


class EmojiCountRule(_Rule):
    """Many emoji."""

    kind: Literal["emoji_count"]
    min_count: int = Field(10, ge=1)


class MixedScriptRule(_Rule):
    """Words mixing Latin and Cyrillic letters."""

    kind: Literal["mixed_script"]
    min_count: int = Field(2, ge=1)


class RepeatRule(_Rule):
    """The same content from many senders within REPEAT_WINDOW_S (the counter's window)."""

    kind: Literal["repeat_across_senders"]
    min_senders: int = Field(5, ge=2)
    min_length: int = Field(20, ge=1)


class RepeatOffenderRule(_Rule):
    """The sender had many high-risk decisions in the last 24 hours."""

    kind: Literal["repeat_offender"]
    min_high_risk: int = Field(3, ge=1, description="high-risk decisions within 24 hours")


class MessageBurstRule(_Rule):
    """The sender posted many messages within the last minute."""

    kind: Literal["message_burst"]
    min_posts: int = Field(20, ge=2, description="messages within one minute, this one included")


RuleSpec = (
    RegexRule
    | WordListRule
    | CapsRatioRule
    | CharRunRule
    | PunctRunRule
    | MentionCountRule
    | EmojiCountRule
    | MixedScriptRule
    | RepeatRule
    | RepeatOffenderRule
    | MessageBurstRule
)
_RULE = TypeAdapter[RuleSpec](Annotated[RuleSpec, Field(discriminator="kind")])
KIND_NAMES: tuple[str, ...] = tuple(
    get_args(model.model_fields["kind"].annotation)[0] for model in get_args(RuleSpec)
)


class RulesDocument(BaseModel):
    """The whole file: a description and a non-empty array of [[rules]] tables."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    rules: Annotated[list[dict[str, Any]], Field(min_length=1)]


def _field_name(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the rules file spells it: files[0], lists.insults."""
    name = ""
    for part in loc:
        if isinstance(part, str) and ("[" in part or part == "str"):
            continue  # which member of a union failed: a type, not a place in the file
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


class RuleContext:
    """Reads one rules file's rules: their tables, word-list files and compiled patterns, with
    every error naming the file, the rule and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sources: dict[Path, Source] = {}

    def error(self, rule_id: str, field: str, problem: str) -> ConfigError:
        """Build the ConfigError for a field of a rule."""
        where = f"field {field!r}: " if field else ""
        return ConfigError(f"{self.path}: rule {rule_id!r}: {where}{problem}")

    def spec(self, index: int, raw: Any) -> RuleSpec:
        """Validate one [[rules]] table."""
        rule_id = f"#{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            rule_id = raw["id"] if re.match(RULE_ID, raw["id"]) else rule_id
        try:
            return _RULE.validate_python(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = err["loc"]
            if err["type"].startswith("union_tag"):
                loc = ("kind",)
                err["msg"] = f"must be one of {', '.join(KIND_NAMES)}"
            elif loc and loc[0] == (raw.get("kind") if isinstance(raw, dict) else None):
                loc = loc[1:]  # the discriminator's tag is not a field of the table
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"is not a field of a {raw.get('kind')} rule"
                if loc[-1] in _MOVED:
                    message += f" ({_MOVED[str(loc[-1])]})"
            elif isinstance(err.get("input"), str | int | float | bool):
                message = f"{message}, not {err['input']!r}"
            raise self.error(rule_id, _field_name(loc), message) from None

    def words(self, rule_id: str, value: list[str] | str, field: str) -> list[str]:
        """Words given inline (a list) or as a file name relative to the rules file."""
        if isinstance(value, list):
            return [v.strip() for v in value if v.strip()]
        file = (self.path.parent / value).resolve()
        try:
            if file not in self.sources:
                self.sources[file] = read(file)
            lines = self.sources[file][0].decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(rule_id, field, f"cannot read word list {value!r} ({exc})") from exc
        return [w for w in (line.strip() for line in lines) if w and not w.startswith("#")]

    def compile(self, rule_id: str, pattern: str, field: str, lower: bool) -> re.Pattern[str]:
        """Compile a pattern; on the original text matching ignores case."""
        try:
            return re.compile(pattern, 0 if lower else re.IGNORECASE)
        except re.error as exc:
            problem = f"bad regular expression {pattern[:60]!r} ({exc})"
            raise self.error(rule_id, field, problem) from exc

    def expand(self, rule_id: str, pattern: str, lists: dict[str, list[str]]) -> str:
        """Replace each {{name}} with a pattern that matches any entry of the named list."""

        def alternation(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in lists:
                problem = f"uses {{{{{name}}}}} but `lists` has no {name!r}"
                raise self.error(rule_id, "patterns", problem)
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
