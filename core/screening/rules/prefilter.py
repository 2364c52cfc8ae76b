"""The regex prefilter: which of a rule set's patterns could match a text, found without
running them.

Every match of a pattern contains certain literal words; they are read out of the compiled
pattern with the standard library's own parser (`re._parser`) and indexed, so a text's words
are looked up once and only the patterns they could satisfy are run.
"""

from __future__ import annotations

import re
import re._parser as sre  # the stdlib's own pattern parser, used only to derive prefilters
from typing import Any

from core.screening.rules.matchers import RegexMatcher, TextView

GATE_CHARS = 4  # word prefixes up to this length are indexed
# Words so common that a condition on them filters little; only used to rank conditions.
# (one string reads better than 90 quoted words)
_COMMON_WORDS = frozenset(
    "a an the i me my we us our you your u ur ya he him his she her they them their it its "  # noqa: SIM905
    "is are was be been am do did to of in on at for with and or but not no so go get got "
    "just like know want make made see say said this that what who all can will would should "
    "have has had if up out one".split()
)
# ("w", word prefix) | ("x", whole word) | ("s", substring) | ("d", "") for a digit
_Starts = set[tuple[str, str]]
_INLINE_IGNORECASE = re.compile(r"\(\?[a-zA-Z]*i")


class Prefilter:
    """Finds, for a text, the patterns that could match it, without running them.

    Every match of a pattern contains certain literals: after "\\b(?:kill|stab)\\s+" it must
    contain a word starting with "kill" or "stab". Such conditions ("needs") are read from the
    parsed pattern and the two most selective kept. Word needs are met through one index
    lookup per distinct word of the text; the other needs (a substring, a digit) are tested,
    once per text each, only for the patterns whose word needs are met. Patterns with no usable
    need always run.
    """

    def __init__(self, rules: list[RegexMatcher]) -> None:
        # A word meets the needs under its first GATE_CHARS letters (or itself, if shorter);
        # prefixes shorter than that ("die" for "die", "dies", "died") are kept apart.
        self.by_key: dict[str, list[int]] = {}
        self.by_short: dict[str, list[int]] = {}
        self.owner: list[int] = []  # word need -> its pattern
        self.partner: list[int] = []  # word need -> the pattern's other word need, or -1
        self.checks: list[list[int]] = []  # pattern -> its other needs (substring, digit)
        self.check_patterns: dict[re.Pattern[str], int] = {}  # one search per need, its id
        self.unconditional: list[int] = []  # patterns without word needs
        for rule in rules:
            rule.first_id = len(self.checks)
            for pattern in rule.patterns:
                number = len(self.checks)
                needs = _needs(pattern) if rule.on_normalized else []
                words = [n for n in needs if all(kind in "wx" for kind, _ in n)]
                first = len(self.owner)
                for need in words:
                    for kind, literal in need:
                        short = kind == "w" and len(literal) < GATE_CHARS
                        index = self.by_short if short else self.by_key
                        index.setdefault(literal, []).append(len(self.owner))
                    self.owner.append(number)
                self.partner += [first + 1, first] if len(words) == 2 else [-1] * len(words)
                if not words:
                    self.unconditional.append(number)
                checks = sorted((n for n in needs if n not in words), key=len)  # cheapest first
                self.checks.append(
                    [
                        self.check_patterns.setdefault(_check(n), len(self.check_patterns))
                        for n in checks
                    ]
                )
        self.check_list = list(self.check_patterns)

    def open_patterns(self, text: TextView) -> set[int]:
        """Return the ids of the patterns whose needs the text meets."""
        words = text.words
        met: set[int] = set()
        for key in self.by_key.keys() & {w[:GATE_CHARS] for w in words}:
            met.update(self.by_key[key])
        if self.by_short:
            prefixes = {w[:n] for w in words for n in range(2, GATE_CHARS)}
            for key in self.by_short.keys() & prefixes:
                met.update(self.by_short[key])
        partner, owner = self.partner, self.owner
        opened = {owner[n] for n in met if partner[n] < 0 or partner[n] in met}
        opened.update(self.unconditional)
        lower = text.lower
        known: dict[int, bool] = {}
        for number in opened.copy():
            for check in self.checks[number]:
                if check not in known:
                    known[check] = self.check_list[check].search(lower) is not None
                if not known[check]:
                    opened.discard(number)
                    break
        return opened


def _needs(pattern: re.Pattern[str]) -> list[frozenset[tuple[str, str]]]:
    """Read the two most selective literal conditions every match of a pattern meets."""
    if pattern.flags & re.IGNORECASE or _INLINE_IGNORECASE.search(pattern.pattern):
        return []  # literals would not say which case the text has: always run it
    try:
        items = list(sre.parse(pattern.pattern, pattern.flags).data)
        found = {
            frozenset(starts)
            for i in range(len(items))
            # (starting inside a run of literal characters only repeats that run's condition)
            if i == 0 or items[i - 1][0] is not sre.LITERAL
            if (starts := _starts(items[i:], _word_start(items, i))) is not None
        }
    except Exception:  # another Python's parser, say: the pattern just always runs
        return []
    return sorted({_simplest(_indexable(n)) for n in found}, key=_selectivity)[:2]


def _indexable(starts: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """Turn a need with a one-letter word prefix (not indexed) into a substring need."""
    if any(kind == "w" and len(lit) == 1 for kind, lit in starts):
        return frozenset(("s" if kind in "wx" else kind, lit) for kind, lit in starts)
    return starts


def _simplest(starts: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """Drop literals that another of the same need implies ("bit." when "." is there)."""
    return frozenset(
        (kind, lit)
        for kind, lit in starts
        if not any(
            other != lit
            and (
                (k == "s" and kind in "swx" and other in lit)
                or (k == "w" and lit.startswith(other) and kind in "wx")
            )
            for k, other in starts
        )
    )


def _check(need: frozenset[tuple[str, str]]) -> re.Pattern[str]:
    """Compile a need that is not only words into one search: any literal, or a digit."""
    literals = sorted({lit for kind, lit in need if kind != "d"}, key=len, reverse=True)
    digit = [r"\d"] if any(kind == "d" for kind, _ in need) else []
    return re.compile("|".join([*map(re.escape, literals), *digit]))


def _selectivity(starts: frozenset[tuple[str, str]]) -> float:
    """Rank a condition: lower is rarer in ordinary text (fewer, longer, uncommon literals)."""
    score = 0.0
    for kind, literal in starts:
        if kind == "d":
            score += 100
        elif kind == "s":
            score += 200 / len(literal) ** 2
        elif literal in _COMMON_WORDS or len(literal) <= 2:
            score += 100
        else:
            score += 1 if len(literal) >= GATE_CHARS else 3
    return score


def _starts(items: list[Any], bounded: bool, prefix: str = "") -> _Starts | None:
    """List how matches of a parsed sequence can begin, given the literal prefix so far:
    ("w", word prefix) or ("x", whole word) when at a word start, ("s", substring) elsewhere,
    ("d", "") for a digit; None when a match could begin with anything."""
    for index, (op, av) in enumerate(items):
        rest = items[index + 1 :]
        if len(prefix) == GATE_CHARS:
            break
        if op is sre.LITERAL and (chr(av).isalnum() or not (bounded and prefix)):
            bounded = bounded and chr(av).isalnum()
            prefix += chr(av)
        elif op is sre.AT and av is sre.AT_BOUNDARY:
            if prefix:
                return {("x" if bounded else "s", prefix)}
            bounded = True
        elif op in (sre.ASSERT, sre.ASSERT_NOT) and not prefix:
            bounded = bounded or _ends_in_nonword(op, av)  # zero-width, but may fix a boundary
        elif op is sre.SUBPATTERN:
            return _starts(list(av[-1].data) + rest, bounded, prefix)
        elif op is sre.BRANCH:
            return _union([_starts(list(alt.data) + rest, bounded, prefix) for alt in av[1]])
        elif op is sre.IN and all(kind is sre.LITERAL for kind, _ in av):
            return _union([_starts([(sre.LITERAL, c), *rest], bounded, prefix) for _, c in av])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and (av[0] == 0 or not prefix):
            low, _, body = av
            first = _starts(list(body.data) + (rest if low == 0 else []), bounded, prefix)
            return _union([first, _starts(rest, bounded, prefix)]) if low == 0 else first
        elif prefix:
            # A word ends here if white space or other punctuation must follow.
            whole = bounded and (op is sre.LITERAL or _ends_in_nonword(op, av))
            return {("x" if whole else ("w" if bounded else "s"), prefix)}
        elif op is sre.IN:
            return {("d", "")} if _digits_only(av) else None
        else:
            return None
    if not prefix:
        return None
    return {("w" if bounded else "s", prefix)}


def _union(parts: list[_Starts | None]) -> _Starts | None:
    """Combine the beginnings of alternatives; None if any alternative is unconstrained."""
    combined: _Starts = set()
    for part in parts:
        if part is None:
            return None
        combined |= part
    return combined


def _word_start(items: list[Any], index: int) -> bool:
    """Tell whether the items before `index` always end in a non-word character or \\b, so
    that a literal word at `index` starts a word of the text."""
    for op, av in reversed(items[:index]):
        if _ends_in_nonword(op, av):
            return True
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] == 0:
            continue  # may be absent: look further back
        return False
    return False


def _ends_in_nonword(op: Any, av: Any) -> bool:
    """Tell whether a parsed item always ends with a non-word character (or is \\b)."""
    if op is sre.AT:
        return av in (sre.AT_BOUNDARY, sre.AT_BEGINNING, sre.AT_BEGINNING_STRING)
    if op is sre.ASSERT_NOT and len(av[1].data) == 1:
        # (?<![\w...]) or (?![\w...]): the character before (or after) is not a word character
        kind, members = av[1].data[0]
        return kind is sre.IN and (sre.CATEGORY, sre.CATEGORY_WORD) in members
    if op is sre.LITERAL:
        return not chr(av).isalnum()
    if op is sre.IN:
        return all(
            (kind is sre.CATEGORY and value in (sre.CATEGORY_SPACE, sre.CATEGORY_NOT_WORD))
            or (kind is sre.LITERAL and not chr(value).isalnum())
            for kind, value in av
        )
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        return av[0] >= 1 and bool(av[2].data) and _ends_in_nonword(*av[2].data[-1])
    if op is sre.SUBPATTERN:
        return bool(av[-1].data) and _ends_in_nonword(*av[-1].data[-1])
    if op is sre.BRANCH:
        return all(alt.data and _ends_in_nonword(*alt.data[-1]) for alt in av[1])
    return False


def _digits_only(members: list[tuple[Any, Any]]) -> bool:
    """Tell whether a character class matches digits only."""
    for kind, value in members:
        if kind is sre.CATEGORY and value is sre.CATEGORY_DIGIT:
            continue
        if kind is sre.RANGE and 48 <= value[0] <= value[1] <= 57:
            continue
        if kind is sre.LITERAL and 48 <= value <= 57:
            continue
        return False
    return True
