"""The matchers: the fixed set of tests a rule can make of a text, and the shared word index.

Each matcher is built from one checked [[rules]] table (a `RuleSpec`) and finds spans in a
`TextView`, the views of one text that every matcher shares, each computed at most once;
`Matcher.evaluate` turns those spans into a `RuleHit` with evidence. `KINDS` names the matcher
each rule `kind` builds. `WordIndex` looks a text's words up once for all word-list rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.models import Category
from core.rulefile import RuleSpec, allow_pattern, expand

MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 64

_WORD = re.compile(r"[^\W_]+")
_ASCII_UPPER = re.compile(r"[A-Z]")
_ASCII_LOWER = re.compile(r"[a-z]")
_URL_OR_HANDLE = re.compile(r"(?:https?://|www\.)\S+|[@#]\w+")
_MENTION = re.compile(r"(?<![\w@.])@\w{1,50}")
# Pictographs, dingbats and symbols; skin-tone modifiers are part of the emoji before them.
_EMOJI = re.compile(
    "[\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff]"
)
# Suffixes a word-list rule with `inflect = true` adds; the stem must be long enough that
# "cumin" or "titer" never reduce to a listed word.
_SUFFIXES = (("s", 3), ("es", 3), ("ed", 4), ("ing", 4), ("in", 4), ("er", 4), ("ers", 4))

_CYRILLIC = re.compile("[\u0400-\u04ff]")
# A word holding both a Latin and a Cyrillic letter, in either order.
_MIXED_SCRIPT_WORD = re.compile(
    "[^\\W\\d_]*(?:[a-zA-Z][^\\W\\d_]*[\u0400-\u04ff]|[\u0400-\u04ff][^\\W\\d_]*[a-zA-Z])[^\\W\\d_]*"
)

Span = tuple[int, int, str]  # start, end, the text shown as evidence


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on a text, with the text that made it fire."""

    rule_id: str
    category: Category
    weight: float
    evidence: tuple[str, ...]


class TextView:
    """The views of one text that matchers share, each computed at most once."""

    __slots__ = (
        "_lower",
        "_spans",
        "_words",
        "normalized",
        "open_patterns",
        "original",
        "repeat_count",
        "word_hits",
    )

    def __init__(self, original: str, normalized: str, repeat_count: int) -> None:
        self.original = original
        self.normalized = normalized
        self.repeat_count = repeat_count
        self._lower: str | None = None
        self._words: list[str] | None = None
        self._spans: list[tuple[int, int]] | None = None
        self.word_hits: dict[int, list[Span]] = {}  # word-list rule slot -> its spans
        self.open_patterns: set[int] = set()  # ids of patterns the prefilter lets run

    @property
    def lower(self) -> str:
        """The normalised text in lower case, which patterns and word lists match."""
        if self._lower is None:
            self._lower = self.normalized.lower()
        return self._lower

    @property
    def words(self) -> list[str]:
        """Words of the lower-cased text (apostrophes and hyphens split them)."""
        if self._words is None:
            self._words = _WORD.findall(self.lower)
        return self._words

    def span(self, first: int, last: int) -> Span:
        """Return the span from word `first` to word `last` (inclusive), for evidence."""
        if self._spans is None:
            self._spans = [m.span() for m in _WORD.finditer(self.lower)]
        start, end = self._spans[first][0], self._spans[last][1]
        return start, end, self.show(start, end)

    def show(self, start: int, end: int) -> str:
        """Return a span of the normalised text in its own case, for evidence."""
        source = self.normalized if len(self.normalized) == len(self.lower) else self.lower
        return source[start:end]


class Matcher:
    """What every matcher shares: identity, category, weight, allow list, evidence rules."""

    on_normalized = True  # spans refer to the normalised text (else to the original)

    def __init__(self, spec: RuleSpec) -> None:
        self.id: str = spec.rule_id
        self.category = spec.category()
        self.weight = spec.weight()
        allow = spec.str_list("allow", required=False)
        self.allow = allow_pattern(allow)
        # First words of the allow phrases: only texts with one of them need the allow scan.
        self.allow_first = frozenset(_WORD.findall(p.lower())[0] for p in allow if _WORD.search(p))
        self.min_matches = spec.integer("min_matches", default=1, minimum=1)

    def find(self, text: TextView) -> list[Span]:
        """Return the matching spans; each matcher kind overrides this."""
        raise NotImplementedError

    def evaluate(self, text: TextView) -> RuleHit | None:
        """Match, drop what the allow list covers, and return a hit with evidence or None."""
        spans = self.find(text)
        if not spans:
            return None
        if self.allow is not None and not self.allow_first.isdisjoint(text.words):
            allowed = [m.span() for m in self.allow.finditer(text.lower)]
            if allowed and self.on_normalized:
                spans = [s for s in spans if not any(a < s[1] and s[0] < b for a, b in allowed)]
            elif allowed:
                spans = []
        evidence: dict[str, str] = {}
        end = -1
        for start, stop, shown in sorted(spans, key=lambda s: (s[0], -s[1])):
            if stop <= end and start < stop:
                continue  # inside a longer match already kept ("555 123 4567" in "+1 555 ...")
            end = max(end, stop)
            evidence.setdefault(shown.lower(), shown[:MAX_EVIDENCE_CHARS])
        if not evidence or len(evidence) < self.min_matches:
            return None
        return RuleHit(self.id, self.category, self.weight, tuple(evidence.values())[:MAX_EVIDENCE])


class RegexMatcher(Matcher):
    """Regular expressions on the lower-cased normalised text (or the original), with
    {{name}} placeholders that expand to a word list."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        field = spec.choice("field", ("normalized", "original"), default="normalized")
        self.on_normalized = field == "normalized"
        lists = {name: spec.words(value, f"lists.{name}") for name, value in spec.table("lists")}
        self.patterns = [
            spec.compile(expand(pattern, lists, spec), "patterns", self.on_normalized)
            for pattern in spec.str_list("patterns")
        ]
        # "all": every pattern must match (a money amount AND investment wording).
        self.require_all = spec.choice("require", ("any", "all"), default="any") == "all"
        self.first_id = 0  # id of the first pattern in the rule set's prefilter

    def find(self, text: TextView) -> list[Span]:
        """Return every match of every pattern (nothing if `all` is required and one misses)."""
        subject = text.lower if self.on_normalized else text.original
        spans: list[Span] = []
        for number, pattern in enumerate(self.patterns, self.first_id):
            found = (
                [(m.start(), m.end(), m.group()) for m in pattern.finditer(subject)]
                if number in text.open_patterns
                else []
            )
            if self.require_all and not found:
                return []
            spans += found
        if self.on_normalized and len(text.normalized) == len(subject):
            spans = [(a, b, text.normalized[a:b]) for a, b, _ in spans]  # evidence in its case
        return spans


class WordListMatcher(Matcher):
    """Whole words and phrases of a list, matched on word boundaries of the normalised text."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        entries = spec.words(spec.raw.get("words", []), "words")
        for index, name in enumerate(spec.str_list("files", required=False)):
            entries += spec.words(name, f"files[{index}]")
        if not entries:
            raise spec.error("words", "give at least one word in `words` or `files`")
        self.singles: set[str] = set()
        self.phrases: list[tuple[str, ...]] = []
        for entry in entries:
            parts = tuple(_WORD.findall(entry.lower()))
            if len(parts) == 1:
                self.singles.add(parts[0])
            elif parts:
                self.phrases.append(parts)
        if spec.boolean("inflect", default=False):
            self.singles |= {
                stem + suffix
                for stem in self.singles
                for suffix, min_stem in _SUFFIXES
                if len(stem) >= min_stem
            }
        self.slot = 0  # this rule's place in the rule set's word index

    def find(self, text: TextView) -> list[Span]:
        """Return the spans the shared word pass found for this rule."""
        return text.word_hits.get(self.slot, [])


class _CapsMatcher(Matcher):
    """Shouting: the share of upper-case letters in the original, mentions and URLs left out."""

    on_normalized = False

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.min_ratio = spec.number("min_ratio", default=0.7, low=0.0, high=1.0)
        self.min_letters = spec.integer("min_letters", default=12, minimum=1)

    def find(self, text: TextView) -> list[Span]:
        """Return the upper-case words when the text is mostly capitals."""
        body = text.original
        needed = self.min_letters * self.min_ratio
        if body.isascii() and len(_ASCII_UPPER.findall(body)) < needed:
            return []  # the usual case, decided cheaply
        if "@" in body or "#" in body or "http" in body or "www." in body:
            body = _URL_OR_HANDLE.sub(" ", body)
        if body.isascii():
            upper = len(_ASCII_UPPER.findall(body))
            cased = upper + len(_ASCII_LOWER.findall(body))
        else:
            upper = sum(map(str.isupper, body))
            cased = upper + sum(map(str.islower, body))
        if cased < self.min_letters or upper < self.min_ratio * cased:
            return []
        shouted = [m for m in _WORD.finditer(body) if len(m.group()) > 1 and m.group().isupper()]
        return [(m.start(), m.end(), m.group()) for m in shouted] or [
            (0, 0, body.strip()[:MAX_EVIDENCE_CHARS])
        ]


class _CountMatcher(Matcher):
    """Runs or counts of something in the original text (letters, punctuation, @, emoji)."""

    on_normalized = False
    pattern: re.Pattern[str]
    min_count = 1
    noun = ""  # when set, evidence starts with the count ("7 mentions")

    def applies(self, original: str) -> bool:
        """Cheap test that the pattern could match at all."""
        return True

    def find(self, text: TextView) -> list[Span]:
        """Return the matches when there are at least min_count of them."""
        if not self.applies(text.original):
            return []
        found = [(m.start(), m.end(), m.group()) for m in self.pattern.finditer(text.original)]
        if len(found) < self.min_count:
            return []
        return [(-1, -1, f"{len(found)} {self.noun}"), *found] if self.noun else found


class _CharRunMatcher(_CountMatcher):
    """A letter repeated many times in a row ("sooooo")."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        run = spec.integer("min_run", default=4, minimum=3)
        # Any character here, letters picked below: a class in the pattern scans far slower.
        self.pattern = re.compile(rf"(.)\1{{{run - 1},}}")

    def find(self, text: TextView) -> list[Span]:
        """Return the words that contain a run, as evidence."""
        original = text.original
        spans = []
        for first, last, run in super().find(text):
            if not run[0].isalpha():
                continue
            start, end = first, last
            while start > 0 and original[start - 1].isalpha():
                start -= 1
            while end < len(original) and original[end].isalpha():
                end += 1
            spans.append((start, end, original[start:end]))
        return spans


class _PunctRunMatcher(_CountMatcher):
    """Punctuation repeated in a row ("!!!", "?!?!")."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        run = spec.integer("min_run", default=3, minimum=2)
        chars = spec.string("chars", default="!?")
        self.pattern = re.compile(f"[{re.escape(chars)}]{{{run},}}")
        self.pairs = [a + b for a in chars for b in chars]

    def applies(self, original: str) -> bool:
        """Only texts with two such characters in a row can have a run."""
        return any(pair in original for pair in self.pairs)


class _MentionMatcher(_CountMatcher):
    """Many @mentions in one message."""

    pattern = _MENTION
    noun = "mentions"

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.min_count = spec.integer("min_count", default=5, minimum=1)

    def applies(self, original: str) -> bool:
        """Only texts with an @ can have mentions."""
        return original.count("@") >= self.min_count


class _MixedScriptMatcher(_CountMatcher):
    """Words that mix Latin and Cyrillic letters ("рaбoты" with Latin a and o): look-alike
    letters slipped into words to dodge filters, which ordinary writing in either script
    never does."""

    pattern = _MIXED_SCRIPT_WORD
    noun = "mixed-script words"

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.min_count = spec.integer("min_count", default=2, minimum=1)

    def applies(self, original: str) -> bool:
        """Only texts with a Cyrillic letter can mix it with Latin ones."""
        return not original.isascii() and _CYRILLIC.search(original) is not None


class _EmojiMatcher(_CountMatcher):
    """Many emoji in one message."""

    pattern = _EMOJI
    noun = "emoji"

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.min_count = spec.integer("min_count", default=10, minimum=1)

    def applies(self, original: str) -> bool:
        """Only non-ASCII texts can have emoji."""
        return not original.isascii()


class RepeatMatcher(Matcher):
    """The same normalised content from many distinct senders within the counter's window."""

    on_normalized = False

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.min_senders = spec.integer("min_senders", default=5, minimum=2)
        self.min_length = spec.integer("min_length", default=20, minimum=1)
        self.window_s = spec.integer("window_s", default=600, minimum=1)

    def find(self, text: TextView) -> list[Span]:
        """Fire when the caller's repeat count reaches the threshold."""
        if text.repeat_count < self.min_senders:
            return []
        return [(0, 0, f"{text.repeat_count} distinct senders")]


# ------------------------------------------------------------------------- shared word pass


class WordIndex:
    """All word-list rules of a rule set as one index, so a text's words are looked up once."""

    def __init__(self, rules: list[WordListMatcher]) -> None:
        self.singles: dict[str, list[int]] = {}
        self.phrases: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        for slot, rule in enumerate(rules):
            rule.slot = slot
            for word in rule.singles:
                self.singles.setdefault(word, []).append(slot)
            for phrase in rule.phrases:
                self.phrases.setdefault(phrase[0], []).append((slot, phrase))

    def scan(self, text: TextView) -> dict[int, list[Span]]:
        """Return, per rule slot, the spans of its words and phrases in the text."""
        hits: dict[int, list[Span]] = {}
        words = text.words
        singles, phrases = self.singles, self.phrases
        for i in [i for i, word in enumerate(words) if word in singles or word in phrases]:
            for slot in singles.get(words[i], ()):
                hits.setdefault(slot, []).append(text.span(i, i))
            for slot, phrase in phrases.get(words[i], ()):
                if tuple(words[i : i + len(phrase)]) == phrase:
                    hits.setdefault(slot, []).append(text.span(i, i + len(phrase) - 1))
        return hits


# ------------------------------------------------------------------------- registry

KINDS: dict[str, Callable[[RuleSpec], Matcher]] = {
    "regex": RegexMatcher,
    "wordlist": WordListMatcher,
    "caps_ratio": _CapsMatcher,
    "char_run": _CharRunMatcher,
    "punct_run": _PunctRunMatcher,
    "mention_count": _MentionMatcher,
    "emoji_count": _EmojiMatcher,
    "mixed_script": _MixedScriptMatcher,
    "repeat_across_senders": RepeatMatcher,
}
