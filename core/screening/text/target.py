"""Whom a text is aimed at, and what it is about: the cues that tell one harm from another.

Abuse of the person addressed (TARGETED_HARASSMENT), hate of a group (HATE_SPEECH), sexual
remarks (SEXUAL) and untargeted profanity (TOXIC) often share their words; what separates them
is whom the text speaks to and of, and what it is about. These cues feed the category model
only (which harmful category a flagged text is), never the decision whether it is harmful. Each
is a 0/1 column on the normalised text, so a cue seen on one source means the same on every
other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from core.screening.text.lexicon import wordlist_entries

# Column names, in order: the category model's saved weights are refused for another order.
TARGET_FEATURES = (
    "addressee",
    "mention",
    "individual",
    "command",
    "identity_group",
    "group_talk",
    "sexual_topic",
    "violence_word",
)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> frozenset[str]:
    """The set of the space-separated words of a literal."""
    return frozenset(text.split())


# Second-person pronouns, chat spellings included.
_SECOND_PERSON = _words(
    "you your yours yourself yourselves you're youre you'll you've you'd u ur ure ya yall y'all"
    " thou thee thy"
)
# Openers that call someone out ("hey", "dude"): a vocative without a pronoun.
_CALLING = _words("hey oi yo listen dude bro bruh mate buddy pal kid boy girl")
# Orders of the kind thrown at a person, when they open the text or one of its sentences.
_ORDERS = _words(
    "shut go get stop die kill eat suck kiss piss screw fuck sod bugger uninstall quit leave"
    " delete learn grow cry stfu gtfo kys fk fck hang jump drink"
)
_SOFTENERS = _words("just pls please now")
# Speaking of one person who is not addressed.
_INDIVIDUAL = _words("he she him her his hers himself herself")
_SENTENCE = re.compile(r"[.!?\n\]]+")
# Speaking of a group as "them": the frame of most generalisations about people.
_THEY = _words("they them their theirs themselves")
_THEY_PHRASES = frozenset(["these people", "those people", "you people", "all of them", "that lot"])
_DEMONSTRATIVES = frozenset(("these", "those"))
_MENTION = re.compile(r"(?<![\w.])@\w+|\[user\]", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w.])@\w+")


def _entries(*files: str) -> frozenset[str]:
    """Every entry of some word lists, lowercased, its words joined by single spaces."""
    found: set[str] = set()
    for name in files:
        for line in wordlist_entries(name):
            entry = " ".join(_TOKEN.findall(line))
            if entry:
                found.add(entry)
    return frozenset(found)


@cache
def _identity() -> frozenset[str]:
    """Protected groups, by plural (the rules' list), singular or adjective."""
    return _entries("identity_groups.txt", "identity_terms.txt")


@cache
def _violent() -> frozenset[str]:
    """Words of violence (the normaliser's list): kill, shoot, hang."""
    return _entries("violence_terms.txt")


@cache
def _sexual() -> frozenset[str]:
    """Sexual words, explicit (the rules' lists) or ordinary."""
    return _entries("sexual.txt", "sexual_slang.txt", "sexual_topic.txt")


def _grams(tokens: list[str]) -> set[str]:
    """The words of a text and its runs of two and three words."""
    grams = set(tokens)
    grams.update(" ".join(tokens[i : i + 2]) for i in range(len(tokens) - 1))
    grams.update(" ".join(tokens[i : i + 3]) for i in range(len(tokens) - 2))
    return grams


def _opens_with_order(sentences: Iterable[str]) -> bool:
    """Whether a sentence opens (past handles and a softener) with an order."""
    for sentence in sentences:
        words = _TOKEN.findall(_HANDLE.sub(" ", sentence).lower())
        if words and words[0] in _SOFTENERS:
            words = words[1:]
        if words and words[0] in _ORDERS:
            return True
    return False


def _row(text: str) -> tuple[bool, ...]:
    """The TARGET_FEATURES of one text."""
    lower = text.lower()
    tokens = _TOKEN.findall(_HANDLE.sub(" ", lower))
    grams = _grams(tokens)
    group_talk = (
        not _THEY.isdisjoint(grams)
        or not _THEY_PHRASES.isdisjoint(grams)
        or any(a in _DEMONSTRATIVES and b.endswith("s") for a, b in pairwise(tokens))
    )
    return (
        not _SECOND_PERSON.isdisjoint(grams) or bool(tokens and tokens[0] in _CALLING),
        bool(_MENTION.search(text)),
        not _INDIVIDUAL.isdisjoint(grams),
        _opens_with_order(_SENTENCE.split(text)),
        not _identity().isdisjoint(grams),
        group_talk,
        not _sexual().isdisjoint(grams),
        not _violent().isdisjoint(grams),
    )


def target_features(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """The TARGET_FEATURES of each (normalised) text: (n, len(TARGET_FEATURES)), each 0 or 1."""
    out = np.zeros((len(texts), len(TARGET_FEATURES)), dtype=np.float32)
    for row, text in enumerate(texts):
        out[row] = _row(text)
    return out
