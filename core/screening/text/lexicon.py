"""The words that guide folding, and the lookups that turn a masked or l33t spelling into one.

Folding is lexicon-guided: a token is rewritten only when the result is a word of the
profanity, insult, slur, sexual or violence lists (or, for l33t without masks, exactly one
ordinary English word), so prices, phone numbers, URLs and handles come through unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import product
from pathlib import Path

WORDLIST_DIR = Path(__file__).parents[1] / "data" / "wordlists"
# Lists whose single words guide the folding. Earlier lists win when a masked spelling fits
# several words ("f**k"), so the most common profanity comes first.
FOLD_WORDLISTS = (
    "profanity",
    "slurs",
    "insults",
    "sexual",
    "sexual_slang",
    "violence_terms",
    "slurs_ambiguous",
    "profanity_mild",
    "insult_adjectives",
)


def wordlist_entries(name: str) -> list[str]:
    """The entries of one word list (a file name under WORDLIST_DIR), lowercased and stripped,
    without blank lines and `#` comments."""
    lines = (WORDLIST_DIR / name).read_text(encoding="utf-8").splitlines()
    entries = (line.strip().lower() for line in lines)
    return [entry for entry in entries if entry and not entry.startswith("#")]


def _load_lexicon() -> dict[str, int]:
    """Read the folding lexicon: single ASCII words of at least 3 letters, with a priority."""
    lexicon: dict[str, int] = {}
    for name in FOLD_WORDLISTS:
        for word in wordlist_entries(f"{name}.txt"):
            if len(word) >= 3 and word.isascii() and word.isalpha():
                lexicon.setdefault(word, len(lexicon))
    return lexicon


LEXICON = _load_lexicon()


def _load_common_words() -> frozenset[str]:
    """Ordinary English words, used only to undo l33t in tokens the lexicon does not know."""
    path = WORDLIST_DIR / "english_words.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))


_COMMON = _load_common_words()
# "5am", "4th", "2nd", "10pm": a number with a short suffix is not l33t.
_NUMBER_SUFFIX = re.compile(r"^\d+[a-z]{1,3}$")
_MAX_COMBINATIONS = 64
MAX_WORD = max(map(len, LEXICON))
# Words by (length, first letter), in priority order: a masked token is compared only with
# words of its own length that could start the way it starts.
_BUCKETS: dict[tuple[int, str], tuple[str, ...]] = {}
for _word in sorted(LEXICON, key=LEXICON.__getitem__):
    _BUCKETS[(len(_word), _word[0])] = (*_BUCKETS.get((len(_word), _word[0]), ()), _word)
_BY_LENGTH: dict[int, tuple[str, ...]] = {}
for _word in sorted(LEXICON, key=LEXICON.__getitem__):
    _BY_LENGTH[len(_word)] = (*_BY_LENGTH.get(len(_word), ()), _word)

# Characters that stand for letters in l33t spellings.
LEET: dict[str, str] = {
    "0": "o",
    "1": "il",
    "2": "z",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "gb",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "il",
    "|": "li",
    "€": "e",
    "£": "l",
    "+": "t",
    "(": "c",
    "<": "c",
    "¢": "c",
    "©": "c",
    "®": "r",
    "¥": "y",
}
_SYMBOL_LEET = frozenset("@$!|€£+(<¢©®¥")
# Characters that hide one letter each ("f*ck", "f**k", "sh#t").
WILDCARDS = frozenset("*#%_?^~")


def _strip_accent(char: str) -> str:
    """Return the base letter of an accented Latin letter ("ü" -> "u"), or "" when none."""
    base = unicodedata.normalize("NFD", char)[0].lower()
    return base if "a" <= base <= "z" else ""


_ACCENTED: dict[str, str] = {
    ch: _strip_accent(ch)
    for ch in map(chr, range(0xC0, 0x250))
    if ch.isalpha() and _strip_accent(ch)
}

# A run of three equal characters: normalize cuts such runs, so a word holding one is never a
# fold target (normalising twice must change nothing).
TRIPLE = re.compile(r"(.)\1\1")


def lookup(chars: str) -> str | None:
    """Return the lexicon word that a masked or l33t spelling stands for, or None."""
    size = len(chars)
    if size < 3 or size > MAX_WORD:
        return None
    options: list[str | None] = []
    letters = leet = wild = symbols = 0
    for char in chars.lower():
        if "a" <= char <= "z":
            letters += 1
            options.append(char)
        elif char in LEET:
            leet += 1
            symbols += char in _SYMBOL_LEET
            options.append(LEET[char])
        elif char in WILDCARDS:
            wild += 1
            options.append(None)
        elif char in _ACCENTED:
            letters += 1
            options.append(_ACCENTED[char])
        else:
            return None
    # Enough real evidence: a letter (or only symbols, as in "@$$"), and no more hidden
    # characters than shown ones, so "f***" or "***" never guesses a word.
    if not (letters or symbols == size) or letters + leet < 2 or wild > letters + leet:
        return None
    best = _lookup_lexicon(options, size)
    if (
        best is None
        and leet
        and not wild
        and letters >= 2
        and not _NUMBER_SUFFIX.match(chars.lower())
    ):
        best = _lookup_common(options)
    return best


def _lookup_common(options: list[str | None]) -> str | None:
    """The ordinary word a l33t spelling stands for ("y0u" -> "you"), when exactly one fits."""
    choices = [option or "" for option in options]
    combinations = 1
    for choice in choices:
        combinations *= len(choice)
    if combinations == 0 or combinations > _MAX_COMBINATIONS:
        return None
    # A word with a run of three letters ("iii") would be cut by _squeeze on the next pass,
    # and normalising twice must change nothing.
    found = {w for w in ("".join(letters) for letters in product(*choices)) if w in _COMMON}
    found = {w for w in found if not TRIPLE.search(w)}
    return found.pop() if len(found) == 1 else None


def _lookup_lexicon(options: list[str | None], size: int) -> str | None:
    """The highest-priority lexicon word matching the per-character options, or None."""
    first = options[0]
    pools = (
        [_BUCKETS.get((size, c), ()) for c in first]
        if first is not None
        else [_BY_LENGTH.get(size, ())]
    )
    best: str | None = None
    for pool in pools:
        for word in pool:
            if all(o is None or w in o for w, o in zip(word, options, strict=True)):
                if best is None or LEXICON[word] < LEXICON[best]:
                    best = word
                break
    return best


def plain_word(chars: str) -> str | None:
    """Return the lower-cased letters when they are a lexicon word, else None."""
    low = chars.lower()
    return low if low in LEXICON else None
