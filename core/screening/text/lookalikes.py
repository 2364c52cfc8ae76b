"""Unicode tricks undone: invisible characters, stray combining marks, and look-alike letters
from other scripts (Cyrillic, Greek, Armenian, small capitals) folded into Latin words, or Latin
letters slipped into Cyrillic words folded back. Real Russian stays Russian."""

from __future__ import annotations

import re
import unicodedata

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
HAS_CONFUSABLE = re.compile("[" + "".join(map(re.escape, _CONFUSABLE)) + "]")
_CONFUSABLE_TOKEN = re.compile(r"\S*" + HAS_CONFUSABLE.pattern + r"\S*")

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
ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Combining marks that NFKC could not compose into a letter: "Zalgo" stacks and overlays.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold_unicode(text: str) -> str:
    """Apply NFKC, drop invisible characters and stray combining marks, fold look-alikes."""
    text = unicodedata.normalize("NFKC", text.translate(_QUOTES))
    text = _INVISIBLE.sub("", text)
    text = _COMBINING.sub("", text)
    if HAS_CONFUSABLE.search(text):
        text = fold_confusables(text)
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


def fold_confusables(text: str) -> str:
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
