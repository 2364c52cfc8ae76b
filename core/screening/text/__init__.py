"""Text before it is screened: normalisation, with the word lexicon and the look-alike folding.

`normalize` turns what a user typed into what the rules and the embedding read: NFKC, invisible
characters removed, homoglyphs, l33t and masked spellings folded, long runs squeezed.
"""

from core.screening.text.lexicon import WORDLIST_DIR
from core.screening.text.normalization import normalize

__all__ = ["WORDLIST_DIR", "normalize"]
