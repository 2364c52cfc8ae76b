"""Text normalisation: undo the tricks used to slip past word filters, keep everything else.

`normalize` returns the folded text that rules, embeddings and cache keys use; callers keep the
original. Folding of masked and l33t spellings is lexicon-guided: a token is rewritten only when
the result is a word of the profanity, insult, slur, sexual or violence lists, so prices, phone
numbers, URLs, e-mail addresses, @mentions and ordinary punctuation come through unchanged.
"""

from __future__ import annotations

import re
from itertools import product

from core.screening.text.lexicon import (
    LEET,
    LEXICON,
    MAX_WORD,
    TRIPLE,
    WILDCARDS,
    lookup,
    plain_word,
)
from core.screening.text.lookalikes import (
    ASCII_CONTROL,
    HAS_CONFUSABLE,
    fold_confusables,
    fold_unicode,
)

# Characters that make a token worth a closer look (masks, l33t, dots, digits), runs of three
# equal characters, and accented Latin letters. Each is found by a cheap scan of the whole text;
# only the tokens around the hits are examined.
_MASKISH = re.compile(
    "["
    + re.escape("".join(sorted((set(LEET) | WILDCARDS | set(".-")) - set("0123456789"))))
    + r"\d]"
)
_ACCENTED_CHAR = re.compile("[À-ÖØ-öø-ɏ]")
# Letters written apart: "k i l l", "f u c k i n g".
_SPACED_HINT = re.compile(r" [A-Za-z0-9@$!] [A-Za-z0-9@$!] ")
_SPACED = re.compile(r"(?<!\S)(?:[A-Za-z0-9@$!] ){2,}[A-Za-z0-9@$!](?=[\s.,!?;:)\"']|$)")
_DOTTED = re.compile(r"(?:[^\W_][._\-]){2,}[^\W_]")
# Tokens that are never rewritten: URLs, e-mail addresses, bare domains with a path, numbers,
# prices, times and phone-number pieces.
_PROTECTED = re.compile(
    r"""^[("'<\[]{0,3}(?:
        (?:https?|ftp)://\S*
      | www\.\S*
      | [^\s@]+@[^\s@]+\.[A-Za-z]{2,}\S*
      | [\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}/\S*
      | [+$£€¥(#]?\d[\d.,:/()\-+%]*(?:[kKmMbB]|st|nd|rd|th|am|pm|AM|PM)?["'!?;]*
    )$""",
    re.VERBOSE,
)
# Digits, dots and mask characters keep their runs: "1000", "...", "f***" mean their count.
_RUN = re.compile(r"([^\d.*#_])\1{2,}")
_DOTS = re.compile(r"\.{4,}")
_ROMAN = re.compile(r"^[IVXLCDM]+$")
_MAX_TOKEN = 64
_LEAD = "\"'([{<¡¿#"
_TRAIL = "\"')]}>.,;:!?…"


def normalize(text: str) -> str:
    """Fold text for matching: NFKC, no invisibles, homoglyphs, l33t and masks undone, runs cut."""
    text = ASCII_CONTROL.sub("", text) if text.isascii() else fold_unicode(text)
    text = " ".join(text.split())
    if _SPACED_HINT.search(f" {text} "):
        text = _SPACED.sub(_join_spaced, text)
    spots = [m.start() for m in _MASKISH.finditer(text)]
    if TRIPLE.search(text):
        spots += [m.start() for m in TRIPLE.finditer(text)]
    if not text.isascii():
        spots += [m.start() for m in _ACCENTED_CHAR.finditer(text)]
    if not spots:
        return text
    parts: list[str] = []
    done = 0
    for spot in sorted(spots):
        if spot < done:
            continue  # a token already rewritten
        start = text.rfind(" ", 0, spot) + 1
        end = text.find(" ", spot)
        end = len(text) if end < 0 else end
        parts += (text[done:start], _fold_token(text[start:end]))
        done = end
    parts.append(text[done:])
    folded = "".join(parts)
    if folded != text and not folded.isascii() and HAS_CONFUSABLE.search(folded):
        # Undoing l33t can add Latin letters ("@$@" -> "asa") that change which script a
        # lone look-alike belongs to; decide again, so a second pass would change nothing.
        folded = fold_confusables(folded)
    return folded


def _apply_case(original: str, word: str) -> str:
    """Give a folded word the case pattern of the text it replaces (UPPER, Title or lower)."""
    letters = [c for c in original if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return word.upper()
    if letters and original[0].isupper():
        return word.capitalize()
    return word


def _join_spaced(match: re.Match[str]) -> str:
    """Join letters written apart when some stretch of them spells a lexicon word."""
    pieces = match.group(0).split(" ")
    out: list[str] = []
    i = 0
    while i < len(pieces):
        # A word starts with a letter (or @, $ as in "@ss", "$hit"); "1 2 3 4" spells nothing.
        stop = i + 2 if pieces[i].isdigit() else min(len(pieces), i + MAX_WORD)
        for j in range(stop, i + 2, -1):
            chunk = "".join(pieces[i:j])
            word = lookup(chunk) if not chunk.isalpha() else plain_word(chunk)
            if word is not None:
                out.append(_apply_case(chunk, word))
                i = j
                break
        else:
            out.append(pieces[i])
            i += 1
    return " ".join(out)


def _squeeze(text: str) -> str:
    """Cut runs of 3+ equal characters to 2 (to 1 where that makes a lexicon word)."""
    if "...." in text:
        text = _DOTS.sub("...", text)
    runs = [m.span() for m in _RUN.finditer(text)]
    if not runs or text.lower() in LEXICON or _ROMAN.match(text):
        return text
    if len(runs) <= 4:
        for keep in product((1, 2), repeat=len(runs)):
            candidate = _cut_runs(text, runs, keep)
            if candidate.lower() in LEXICON:
                return candidate
    return _cut_runs(text, runs, (2,) * len(runs))


def _cut_runs(text: str, runs: list[tuple[int, int]], keep: tuple[int, ...]) -> str:
    """Shorten each run (start, end) of text to the matching number of characters in keep."""
    parts: list[str] = []
    last = 0
    for (start, end), count in zip(runs, keep, strict=True):
        parts.append(text[last : start + count])
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _fold_token(token: str) -> str:
    """Rewrite one suspicious token, keeping its surrounding punctuation."""
    if len(token) > _MAX_TOKEN:
        return _squeeze(token)  # no word is that long; and no pattern gets a huge input
    if _PROTECTED.match(token):
        return token
    core = token.lstrip(_LEAD)
    lead = token[: len(token) - len(core)]
    stripped = core.rstrip(_TRAIL)
    trail = core[len(stripped) :]
    core = stripped
    if core[-2:] in ("'s", "'S"):
        core, trail = core[:-2], core[-2:] + trail
    # Markdown emphasis (*word*, _word_) is punctuation, not a mask.
    while len(core) > 2 and core[0] == core[-1] and core[0] in "*_~":
        lead, core, trail = lead + core[0], core[1:-1], core[-1] + trail
    if not core:
        return _squeeze(token)
    word: str | None = None
    if _DOTTED.fullmatch(core):
        joined = re.sub(r"[._\-]", "", core)
        word = plain_word(joined) if joined.isalpha() else lookup(joined)
    elif not core.isalpha() or not core.isascii():
        word = lookup(core)
        if word is None:
            # Look the squeezed token up too ("@ccc" -> "@cc" -> "acc"): otherwise a second
            # pass would fold what the first one only squeezed, and normalising twice must
            # change nothing.
            squeezed = _squeeze(core)
            word = lookup(squeezed) if squeezed != core else None
            core = squeezed
    folded = _apply_case(core, word) if word is not None else _squeeze(core)
    return _squeeze(lead) + folded + _squeeze(trail)
