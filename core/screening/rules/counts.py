"""Matchers that count or measure something in the original text: shouting, runs of a letter
or of punctuation, @mentions, emoji, and words mixing Latin and Cyrillic letters."""

from __future__ import annotations

import re

from core.screening.rules.matchers import MAX_EVIDENCE_CHARS, Matcher, Span, TextView
from core.screening.rules.spec import (
    CapsRatioRule,
    CharRunRule,
    EmojiCountRule,
    MentionCountRule,
    MixedScriptRule,
    PunctRunRule,
)

_WORD = re.compile(r"[^\W_]+")
_ASCII_UPPER = re.compile(r"[A-Z]")
_ASCII_LOWER = re.compile(r"[a-z]")
_URL_OR_HANDLE = re.compile(r"(?:https?://|www\.)\S+|[@#]\w+")
_MENTION = re.compile(r"(?<![\w@.])@\w{1,50}")
# Pictographs, dingbats and symbols; skin-tone modifiers are part of the emoji before them.
_EMOJI = re.compile(
    "[\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff]"
)
_CYRILLIC = re.compile("[\u0400-\u04ff]")
# A word holding both a Latin and a Cyrillic letter, in either order.
_MIXED_SCRIPT_WORD = re.compile(
    "[^\\W\\d_]*(?:[a-zA-Z][^\\W\\d_]*[\u0400-\u04ff]|[\u0400-\u04ff][^\\W\\d_]*[a-zA-Z])[^\\W\\d_]*"
)


class CapsMatcher(Matcher):
    """Shouting: the share of upper-case letters in the original, mentions and URLs left out."""

    on_normalized = False

    def __init__(self, spec: CapsRatioRule) -> None:
        super().__init__(spec)
        self.min_ratio = spec.min_ratio
        self.min_letters = spec.min_letters

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


class CharRunMatcher(_CountMatcher):
    """A letter repeated many times in a row ("sooooo")."""

    def __init__(self, spec: CharRunRule) -> None:
        super().__init__(spec)
        run = spec.min_run
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


class PunctRunMatcher(_CountMatcher):
    """Punctuation repeated in a row ("!!!", "?!?!")."""

    def __init__(self, spec: PunctRunRule) -> None:
        super().__init__(spec)
        run, chars = spec.min_run, spec.chars
        self.pattern = re.compile(f"[{re.escape(chars)}]{{{run},}}")
        self.pairs = [a + b for a in chars for b in chars]

    def applies(self, original: str) -> bool:
        """Only texts with two such characters in a row can have a run."""
        return any(pair in original for pair in self.pairs)


class MentionMatcher(_CountMatcher):
    """Many @mentions in one message."""

    pattern = _MENTION
    noun = "mentions"

    def __init__(self, spec: MentionCountRule) -> None:
        super().__init__(spec)
        self.min_count = spec.min_count

    def applies(self, original: str) -> bool:
        """Only texts with an @ can have mentions."""
        return original.count("@") >= self.min_count


class MixedScriptMatcher(_CountMatcher):
    """Words that mix Latin and Cyrillic letters ("рaбoты" with Latin a and o): look-alike
    letters slipped into words to dodge filters, which ordinary writing in either script
    never does."""

    pattern = _MIXED_SCRIPT_WORD
    noun = "mixed-script words"

    def __init__(self, spec: MixedScriptRule) -> None:
        super().__init__(spec)
        self.min_count = spec.min_count

    def applies(self, original: str) -> bool:
        """Only texts with a Cyrillic letter can mix it with Latin ones."""
        return not original.isascii() and _CYRILLIC.search(original) is not None


class EmojiCountMatcher(_CountMatcher):
    """Many emoji in one message."""

    pattern = _EMOJI
    noun = "emoji"

    def __init__(self, spec: EmojiCountRule) -> None:
        super().__init__(spec)
        self.min_count = spec.min_count

    def applies(self, original: str) -> bool:
        """Only non-ASCII texts can have emoji."""
        return not original.isascii()
