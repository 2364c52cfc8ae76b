"""Adversarial rewrites of harmful text, to check that verdicts survive obfuscation.

Each rewrite targets the words an evader would disguise: words from the rules' word lists
(profanity, insults, slurs, threats, sexual terms), or else the two longest words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from core.screening.text.lexicon import WORDLIST_DIR, wordlist_entries

_TRIGGER_FILES = ("profanity.txt", "insults.txt", "slurs.txt", "sexual.txt", "violence_terms.txt")
_WORD = re.compile(r"[A-Za-z]{3,}")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"})
_ZERO_WIDTH = "\u200b"


def trigger_words() -> frozenset[str]:
    """Single words from the rules' word lists that an evader would disguise."""
    words: set[str] = set()
    for name in _TRIGGER_FILES:
        if (WORDLIST_DIR / name).exists():
            words.update(word for word in wordlist_entries(name) if " " not in word)
    return frozenset(words)


def _targets(text: str, triggers: frozenset[str]) -> list[re.Match[str]]:
    """The word matches to rewrite in a text."""
    words = list(_WORD.finditer(text))
    chosen = [m for m in words if m.group().lower() in triggers]
    return chosen or sorted(words, key=lambda m: -len(m.group()))[:2]


def _rewrite(text: str, triggers: frozenset[str], change: Callable[[str], str]) -> str:
    """Apply `change` to each target word, leaving the rest of the text as it was."""
    out, last = [], 0
    for match in sorted(_targets(text, triggers), key=lambda m: m.start()):
        out += [text[last : match.start()], change(match.group())]
        last = match.end()
    return "".join([*out, text[last:]])


def _mask(word: str) -> str:
    """Hide the first vowel after the first letter behind an asterisk (f*ck)."""
    for i, char in enumerate(word[1:], start=1):
        if char.lower() in "aeiou":
            return word[:i] + "*" + word[i + 1 :]
    return word


REWRITES: dict[str, Callable[[str], str]] = {
    "leet": lambda w: w.lower().translate(_LEET),
    "zero_width": _ZERO_WIDTH.join,
    "homoglyph": lambda w: w.translate(_HOMOGLYPHS),
    "spacing": " ".join,
    "masking": _mask,
}


def variants(text: str, triggers: frozenset[str]) -> dict[str, str]:
    """Every rewrite of a text, by rewrite name."""
    return {name: _rewrite(text, triggers, change) for name, change in REWRITES.items()}


def sample(items: list[str], limit: int, seed: int = 0) -> list[str]:
    """A fixed random sample of at most `limit` items."""
    chosen = list(items)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit]
