"""The matchers of words and patterns, what every matcher shares, and the shared word index.

Each matcher is built from one checked [[rules]] table (a spec model) and finds spans in a
`TextView`, the views of one text that every matcher shares, each computed at most once;
`Matcher.evaluate` turns those spans into a `RuleHit` with evidence. `WordIndex` looks a text's
words up once for all word-list rules. The counting matchers are in `counts`, the cross-event
one in `repeat`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models import Category
from core.screening.rules.spec import RegexRule, RuleContext, RuleSpec, WordListRule, allow_pattern

MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 64

_WORD = re.compile(r"[^\W_]+")
# Suffixes a word-list rule with `inflect = true` adds; the stem must be long enough that
# "cumin" or "titer" never reduce to a listed word.
_SUFFIXES = (("s", 3), ("es", 3), ("ed", 4), ("ing", 4), ("in", 4), ("er", 4), ("ers", 4))

Span = tuple[int, int, str]  # start, end, the text shown as evidence


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on a text, with the text that made it fire."""

    rule_id: str
    category: Category
    weight: float
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserHistory:
    """What is known of an event's sender when it is screened."""

    high_risk_24h: int = 0  # the sender's high-risk decisions within the last 24 hours
    posts_last_minute: int = 0  # the sender's messages within the last minute, this one included


class TextView:
    """The views of one text that matchers share, each computed at most once."""

    __slots__ = (
        "_lower",
        "_spans",
        "_words",
        "history",
        "normalized",
        "open_patterns",
        "original",
        "repeat_count",
        "word_hits",
    )

    def __init__(
        self,
        original: str,
        normalized: str,
        repeat_count: int,
        history: UserHistory | None = None,
    ) -> None:
        self.original = original
        self.normalized = normalized
        self.repeat_count = repeat_count
        self.history = history
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
        self.id: str = spec.id
        self.category = spec.category
        self.weight = spec.weight
        self.allow = allow_pattern(spec.allow)
        # First words of the allow phrases: only texts with one of them need the allow scan.
        self.allow_first = frozenset(
            _WORD.findall(p.lower())[0] for p in spec.allow if _WORD.search(p)
        )
        self.min_matches: int = getattr(spec, "min_matches", 1)

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

    def __init__(self, spec: RegexRule, context: RuleContext) -> None:
        super().__init__(spec)
        self.on_normalized = spec.field == "normalized"
        lists = {
            name: context.words(spec.id, value, f"lists.{name}")
            for name, value in spec.lists.items()
        }
        self.patterns = [
            context.compile(
                spec.id, context.expand(spec.id, pattern, lists), "patterns", self.on_normalized
            )
            for pattern in spec.patterns
        ]
        # "all": every pattern must match (a money amount AND investment wording).
        self.require_all = spec.require == "all"
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

    def __init__(self, spec: WordListRule, context: RuleContext) -> None:
        super().__init__(spec)
        entries = context.words(spec.id, spec.words, "words")
        for index, name in enumerate(spec.files):
            entries += context.words(spec.id, name, f"files[{index}]")
        if not entries:
            raise context.error(spec.id, "words", "give at least one word in `words` or `files`")
        self.singles: set[str] = set()
        self.phrases: list[tuple[str, ...]] = []
        for entry in entries:
            parts = tuple(_WORD.findall(entry.lower()))
            if len(parts) == 1:
                self.singles.add(parts[0])
            elif parts:
                self.phrases.append(parts)
        if spec.inflect:
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
