"""Text normalisation: undo the tricks used to slip past word filters, keep everything else.

`normalize` returns the folded text that rules, embeddings and cache keys use; callers keep the
original. Folding of masked and l33t spellings is lexicon-guided: a token is rewritten only when
the result is a word of the profanity, insult, slur, sexual or violence lists, so prices, phone
numbers, URLs, e-mail addresses, @mentions and ordinary punctuation come through unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import product
from pathlib import Path

WORDLIST_DIR = Path(__file__).parent / "data" / "wordlists"
# Lists whose single words guide the folding. Earlier lists win when a masked spelling fits
# several words ("f**k"), so the most common profanity comes first.
FOLD_WORDLISTS = (
    "profanity",
    "slurs",
    "insults",
    "sexual",
    "violence_terms",
    "slurs_ambiguous",
    "profanity_mild",
    "insult_adjectives",
)


def _load_lexicon() -> dict[str, int]:
    """Read the folding lexicon: single ASCII words of at least 3 letters, with a priority."""
    lexicon: dict[str, int] = {}
    for name in FOLD_WORDLISTS:
        for line in (WORDLIST_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines():
            word = line.strip().lower()
            if len(word) >= 3 and word.isascii() and word.isalpha():
                lexicon.setdefault(word, len(lexicon))
    return lexicon


_LEXICON = _load_lexicon()


def _load_common_words() -> frozenset[str]:
    """Ordinary English words, used only to undo l33t in tokens the lexicon does not know."""
    path = WORDLIST_DIR / "english_words.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))


_COMMON = _load_common_words()
# "5am", "4th", "2nd", "10pm": a number with a short suffix is not l33t.
_NUMBER_SUFFIX = re.compile(r"^\d+[a-z]{1,3}$")
_MAX_COMBINATIONS = 64
_MAX_WORD = max(map(len, _LEXICON))
# Words by (length, first letter), in priority order: a masked token is compared only with
# words of its own length that could start the way it starts.
_BUCKETS: dict[tuple[int, str], tuple[str, ...]] = {}
for _word in sorted(_LEXICON, key=_LEXICON.__getitem__):
    _BUCKETS[(len(_word), _word[0])] = (*_BUCKETS.get((len(_word), _word[0]), ()), _word)
_BY_LENGTH: dict[int, tuple[str, ...]] = {}
for _word in sorted(_LEXICON, key=_LEXICON.__getitem__):
    _BY_LENGTH[len(_word)] = (*_BY_LENGTH.get(len(_word), ()), _word)

# Characters that stand for letters in l33t spellings.
_LEET: dict[str, str] = {
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
_WILDCARDS = frozenset("*#%_?^~")


def _strip_accent(char: str) -> str:
    """Return the base letter of an accented Latin letter ("ü" -> "u"), or "" when none."""
    base = unicodedata.normalize("NFD", char)[0].lower()
    return base if "a" <= base <= "z" else ""


_ACCENTED: dict[str, str] = {
    ch: _strip_accent(ch)
    for ch in map(chr, range(0xC0, 0x250))
    if ch.isalpha() and _strip_accent(ch)
}

# Look-alikes from other scripts (UTS #39 confusables that NFKC leaves alone), small capitals and
# the negative circled/squared letters. Only applied to tokens that are mostly Latin.
_CONFUSABLE: dict[str, str] = {
    **dict(zip("авеёкмнорстухѕіїјԁһӏԛԝьпг", "abeekmhopctyxsiijdhlqwbnr", strict=True)),
    **dict(zip("АВЕЁКМНОРСТУХЅІЇЈԚԜҺӀ", "ABEEKMHOPCTYXSIIJQWHI", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹ", "ABEZHIKMNOPTYXC", strict=True)),
    **dict(zip("αβγεηικνορτυχωμϲϳ", "abyenikvoptuxwucj", strict=True)),
    **dict(zip("օսհոցզՏՕ", "ouhngqSO", strict=True)),
}
# Latin letters in disguise (dotless i, small capitals, negative circled and squared letters):
# they belong to no other script, so they count as Latin when a token's script is weighed.
_LATIN_VARIANT: dict[str, str] = {
    **dict(zip("ıȷɑɡɩʏ", "ijagiy", strict=True)),
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡᴢ", "abcdefghijklmnopqrstuvwz", strict=True)),
    **{chr(0x1F150 + i): chr(0x41 + i) for i in range(26)},
    **{chr(0x1F170 + i): chr(0x41 + i) for i in range(26)},
}
_CONFUSABLE.update(_LATIN_VARIANT)
# The other direction: Latin letters slipped into Cyrillic words ("рaбoтa" with Latin a, o).
_TO_CYRILLIC = str.maketrans(
    dict(zip("aeopcyxkmAEOPCXKMHTBY", "аеорсухкмАЕОРСХКМНТВУ", strict=True))
)
_LATIN_LOOKALIKES = frozenset("aeopcyxkmAEOPCXKMHTBY")
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLE)
_HAS_CONFUSABLE = re.compile("[" + "".join(map(re.escape, _CONFUSABLE)) + "]")
_CONFUSABLE_TOKEN = re.compile(r"\S*" + _HAS_CONFUSABLE.pattern + r"\S*")

_QUOTES = str.maketrans(
    {"’": "'", "‘": "'", "ʼ": "'", "ʻ": "'", "´": "'", "“": '"', "”": '"', "„": '"'}
)
# Invisible format characters (zero-width space/joiners, bidi controls, variation selectors,
# tags, soft hyphen) and C0/C1 controls. Tab, newline and carriage return are white space and
# become single spaces when white space is collapsed.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Combining marks that NFKC could not compose into a letter: "Zalgo" stacks and overlays.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Characters that make a token worth a closer look (masks, l33t, dots, digits), runs of three
# equal characters, and accented Latin letters. Each is found by a cheap scan of the whole text;
# only the tokens around the hits are examined.
_MASKISH = re.compile(
    "["
    + re.escape("".join(sorted((set(_LEET) | _WILDCARDS | set(".-")) - set("0123456789"))))
    + r"\d]"
)
_TRIPLE = re.compile(r"(.)\1\1")
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
    text = _ASCII_CONTROL.sub("", text) if text.isascii() else _fold_unicode(text)
    text = " ".join(text.split())
    if _SPACED_HINT.search(f" {text} "):
        text = _SPACED.sub(_join_spaced, text)
    spots = [m.start() for m in _MASKISH.finditer(text)]
    if _TRIPLE.search(text):
        spots += [m.start() for m in _TRIPLE.finditer(text)]
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
    if folded != text and not folded.isascii() and _HAS_CONFUSABLE.search(folded):
        # Undoing l33t can add Latin letters ("@$@" -> "asa") that change which script a
        # lone look-alike belongs to; decide again, so a second pass would change nothing.
        folded = _fold_confusables(folded)
    return folded


def _fold_unicode(text: str) -> str:
    """Apply NFKC, drop invisible characters and stray combining marks, fold look-alikes."""
    text = unicodedata.normalize("NFKC", text.translate(_QUOTES))
    text = _INVISIBLE.sub("", text)
    text = _COMBINING.sub("", text)
    if _HAS_CONFUSABLE.search(text):
        text = _fold_confusables(text)
    return text


def _is_latin(char: str) -> bool:
    """Tell whether a letter belongs to the Latin script (Basic to Extended-B, Additional)."""
    return char < "\u0250" or "\u1e00" <= char <= "\u1eff"


def _letter_counts(text: str) -> tuple[int, int]:
    """Count Latin and other-script letters, ignoring look-alikes that could be either."""
    latin = other = 0
    for char in text:
        if char in _LATIN_VARIANT:
            latin += 1
        elif char.isalpha() and char not in _CONFUSABLE:
            if _is_latin(char):
                latin += 1
            else:
                other += 1
    return latin, other


def _fold_confusables(text: str) -> str:
    """Map look-alikes to ASCII in tokens that are mostly Latin, so real Cyrillic stays."""
    text_is_latin: list[bool] = []

    def fold(match: re.Match[str]) -> str:
        token = match.group(0)
        latin, other = _letter_counts(token)
        disguised = bool(latin) and _latin_all_lookalikes(token)
        if other and disguised:
            return token.translate(_TO_CYRILLIC)  # a Cyrillic word in disguise
        if other == 0 and (latin == 0 or disguised):
            # Only look-alikes ("рор", "пapтнep"): decide by the script of the whole text.
            if not text_is_latin:
                # Latin look-alikes do not vote: in a disguised Russian text they are the lie.
                total_latin, total_other = _letter_counts(
                    "".join(c for c in text if c not in _LATIN_LOOKALIKES)
                )
                text_is_latin.append(total_latin > total_other)
            if text_is_latin[0]:
                return token.translate(_CONFUSABLE_TABLE)
            return token.translate(_TO_CYRILLIC)
        return token.translate(_CONFUSABLE_TABLE) if latin > other else token

    return _CONFUSABLE_TOKEN.sub(fold, text)


def _latin_all_lookalikes(token: str) -> bool:
    """Tell whether every Latin letter of a token could pass for a Cyrillic one."""
    return all(char in _LATIN_LOOKALIKES for char in token if "A" <= char <= "z" and char.isalpha())


def _lookup(chars: str) -> str | None:
    """Return the lexicon word that a masked or l33t spelling stands for, or None."""
    size = len(chars)
    if size < 3 or size > _MAX_WORD:
        return None
    options: list[str | None] = []
    letters = leet = wild = symbols = 0
    for char in chars.lower():
        if "a" <= char <= "z":
            letters += 1
            options.append(char)
        elif char in _LEET:
            leet += 1
            symbols += char in _SYMBOL_LEET
            options.append(_LEET[char])
        elif char in _WILDCARDS:
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
    found = {w for w in found if not _TRIPLE.search(w)}
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
                if best is None or _LEXICON[word] < _LEXICON[best]:
                    best = word
                break
    return best


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
        stop = i + 2 if pieces[i].isdigit() else min(len(pieces), i + _MAX_WORD)
        for j in range(stop, i + 2, -1):
            chunk = "".join(pieces[i:j])
            word = _lookup(chunk) if not chunk.isalpha() else _plain_word(chunk)
            if word is not None:
                out.append(_apply_case(chunk, word))
                i = j
                break
        else:
            out.append(pieces[i])
            i += 1
    return " ".join(out)


def _plain_word(chars: str) -> str | None:
    """Return the lower-cased letters when they are a lexicon word, else None."""
    low = chars.lower()
    return low if low in _LEXICON else None


def _squeeze(text: str) -> str:
    """Cut runs of 3+ equal characters to 2 (to 1 where that makes a lexicon word)."""
    if "...." in text:
        text = _DOTS.sub("...", text)
    runs = [m.span() for m in _RUN.finditer(text)]
    if not runs or text.lower() in _LEXICON or _ROMAN.match(text):
        return text
    if len(runs) <= 4:
        for keep in product((1, 2), repeat=len(runs)):
            candidate = _cut_runs(text, runs, keep)
            if candidate.lower() in _LEXICON:
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
        word = _plain_word(joined) if joined.isalpha() else _lookup(joined)
    elif not core.isalpha() or not core.isascii():
        word = _lookup(core)
        if word is None:
            # Look the squeezed token up too ("@ccc" -> "@cc" -> "acc"): otherwise a second
            # pass would fold what the first one only squeezed, and normalising twice must
            # change nothing.
            squeezed = _squeeze(core)
            word = _lookup(squeezed) if squeezed != core else None
            core = squeezed
    folded = _apply_case(core, word) if word is not None else _squeeze(core)
    return _squeeze(lead) + folded + _squeeze(trail)
