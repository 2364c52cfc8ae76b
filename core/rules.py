"""The rules engine: rules are data in a TOML file, evaluated by a small fixed set of matchers.

A rule names a category, a weight and one matcher kind with its parameters; word lists live in
text files next to the rules file. `RuleSet` is one loaded, immutable version of that file;
`RuleFile` swaps in a new version when the file changes on disk; `RedisRepeatCounter` supplies the
cross-event signal (the same content from many senders) that the `repeat_across_senders` rule uses.

Speed: a text is screened by dozens of patterns, and scanning even a short text with one costs
microseconds. So a rule set first makes two shared passes over the text's words: one finds every
word-list hit, the other (`_Prefilter`) finds which patterns could match at all, from literal
words that each pattern's matches must contain. Only those patterns are run.
"""

from __future__ import annotations

import hashlib
import re
import re._parser as sre  # the stdlib's own pattern parser, used only to derive prefilters
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
import structlog

from core.errors import ConfigError, StoreUnavailable
from core.models import Category

DEFAULT_RULES_PATH = Path(__file__).parent / "data" / "rules.toml"

MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 64
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PLACEHOLDER = re.compile(r"\{\{([a-z][a-z0-9_]*)\}\}")
_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
_ASCII_UPPER = re.compile(r"[A-Z]")
_ASCII_LOWER = re.compile(r"[a-z]")
_URL_OR_HANDLE = re.compile(r"(?:https?://|www\.)\S+|[@#]\w+")
_MENTION = re.compile(r"(?<![\w@.])@\w{1,50}")
# Pictographs, dingbats and symbols; skin-tone modifiers are part of the emoji before them.
_EMOJI = re.compile(
    "[\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff]"
)
# Suffixes a word-list rule with `inflect = true` adds; the stem must be long enough that
# "cumin" or "titer" never reduce to a listed word.
_SUFFIXES = (("s", 3), ("es", 3), ("ed", 4), ("ing", 4), ("in", 4), ("er", 4), ("ers", 4))

log = structlog.get_logger(__name__)

Span = tuple[int, int, str]  # start, end, the text shown as evidence
_Source = tuple[bytes, tuple[int, int] | None]  # a file's content and its stamp before reading


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on a text, with the text that made it fire."""

    rule_id: str
    category: Category
    weight: float
    evidence: tuple[str, ...]


class RuleSet:
    """One loaded version of a rules file: evaluate texts, and key content for repeat counting."""

    def __init__(self, path: Path, rules: list[_Rule], sources: dict[Path, _Source]) -> None:
        self.path = path
        self.sources = tuple(sources)  # the rules file and every word list it read
        # Stamps taken just before each file was read: an edit that lands during the load then
        # shows as a change, and RuleFile loads once more.
        self.stamp = tuple(stamp for _, stamp in sources.values())
        self.version: str = _digest(sources)
        self.rule_ids: tuple[str, ...] = tuple(rule.id for rule in rules)
        self._rules = rules
        self._words = _WordIndex([r for r in rules if isinstance(r, _WordListRule)])
        self._prefilter = _Prefilter([r for r in rules if isinstance(r, _RegexRule)])
        # What each rule needs from the shared passes, so idle rules are skipped cheaply.
        self._plan = [
            (
                rule,
                frozenset(range(rule.first_id, rule.first_id + len(rule.patterns)))
                if isinstance(rule, _RegexRule)
                else None,
                rule.slot if isinstance(rule, _WordListRule) else None,
            )
            for rule in rules
        ]
        repeat = next((r for r in rules if isinstance(r, _RepeatRule)), None)
        self.repeat_min_length: int | None = repeat.min_length if repeat else None
        self.repeat_window_s: int | None = repeat.window_s if repeat else None

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Read and check a rules file; raise ConfigError naming the rule and field at fault."""
        sources: dict[Path, _Source] = {}
        try:
            sources[path] = _read(path)
            document = tomllib.loads(sources[path][0].decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the rules file ({exc})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        unknown = set(document) - {"rules", "description"}
        if unknown:
            raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}")
        raw_rules = document.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise ConfigError(f"{path}: needs a non-empty [[rules]] array")
        rules: list[_Rule] = []
        for index, raw in enumerate(raw_rules):
            spec = _Spec(path, index, raw, sources)
            rule = spec.build()
            if rule is None:
                continue
            if rule.id in {r.id for r in rules}:
                raise spec.error("id", "is used by an earlier rule")
            if isinstance(rule, _RepeatRule) and any(isinstance(r, _RepeatRule) for r in rules):
                raise spec.error("kind", "only one repeat_across_senders rule is allowed")
            rules.append(rule)
        return cls(path, rules, sources)

    def evaluate(self, original: str, normalized: str, repeat_count: int = 0) -> list[RuleHit]:
        """Return the hits of every enabled rule on one text, in file order."""
        text = _Text(original, normalized, repeat_count)
        word_hits = text.word_hits = self._words.scan(text)
        open_patterns = text.open_patterns = self._prefilter.open_patterns(text)
        hits: list[RuleHit] = []
        for rule, patterns, slot in self._plan:
            if patterns is not None and open_patterns.isdisjoint(patterns):
                continue
            if slot is not None and slot not in word_hits:
                continue
            hit = rule.evaluate(text)
            if hit is not None:
                hits.append(hit)
        return hits

    def repeat_key(self, normalized: str) -> str | None:
        """Key content for the cross-sender count; None when too short or no repeat rule."""
        if self.repeat_min_length is None:
            return None
        folded = " ".join(normalized.casefold().split())
        if len(folded) < self.repeat_min_length:
            return None
        return hashlib.blake2b(folded.encode(), digest_size=16).hexdigest()


class RuleFile:
    """Holds a path's current RuleSet and reloads it when its files change, without a restart."""

    def __init__(self, path: Path, check_interval_s: float = 2.0) -> None:
        self.path = path
        self.check_interval_s = check_interval_s
        self._lock = threading.Lock()
        # The first load raises: a worker must not start screening without valid rules.
        self._current = RuleSet.load(path)
        self._rejected: tuple[tuple[int, int] | None, ...] | None = None
        self._checked = time.monotonic()

    def current(self) -> RuleSet:
        """Return the rule set, reloaded first if its files changed (looked at no more than
        once per interval); a broken edit is logged and the last good set kept."""
        if time.monotonic() - self._checked < self.check_interval_s:
            return self._current
        with self._lock:
            if time.monotonic() - self._checked >= self.check_interval_s:
                self._reload_if_changed()
                self._checked = time.monotonic()
            return self._current

    def _reload_if_changed(self) -> None:
        """Reload when any source file changed; never raise."""
        stamp = tuple(_stat(source) for source in self._current.sources)
        if stamp in (self._current.stamp, self._rejected):
            return
        try:
            fresh = RuleSet.load(self.path)
        except Exception as exc:  # the last good set keeps serving, whatever went wrong
            self._rejected = stamp  # and the same broken files are not retried or re-logged
            log.error(
                "rules_reload_failed",
                path=str(self.path),
                error=str(exc),
                kept_version=self._current.version,
            )
            return
        log.info(
            "rules_reloaded",
            path=str(self.path),
            version=fresh.version,
            previous_version=self._current.version,
        )
        self._current = fresh
        self._rejected = None


class RepeatCounter(Protocol):
    """Counts, per content key, the distinct senders seen within a time window."""

    def observe(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """Record (content_key, sender) pairs and return, for each, the number of distinct
        senders seen for that content within the window."""
        ...


class RedisRepeatCounter:
    """RepeatCounter on Redis HyperLogLogs, one pipelined round trip per call."""

    # Why HyperLogLog and not a set: a spam wave can come from thousands of accounts, and a set
    # per content would grow with every one of them, while an HLL stays under 12 KB (a few
    # hundred bytes while sparse). At the small counts the threshold needs (about 5) Redis's
    # sparse HLL is exact unless two senders share a register (~0.06% at 5 senders), which at
    # worst delays the signal by one sender.
    # The window is two fixed buckets: each observation goes into the bucket of now // window_s,
    # and PFCOUNT of the current and previous bucket (a union) counts the senders of the last
    # one to two windows. Buckets expire after two windows, so nothing needs cleaning up.

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "events:repeat",
        window_s: int = 600,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s < 1:
            raise ConfigError(f"repeat window must be at least 1 second, not {window_s}")
        self._client = client
        self._prefix = prefix
        self._window_s = window_s
        self._clock = clock

    def _key(self, content_key: str, bucket: int) -> str:
        """Name the HLL of one content in one bucket; the hash tag keeps both buckets of a
        content in one Redis Cluster slot, as a multi-key PFCOUNT requires."""
        return f"{self._prefix}:{{{content_key}}}:{bucket}"

    def observe(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """Record (content_key, sender) pairs and return the distinct senders of each so far."""
        if not items:
            return []
        bucket = int(self._clock() // self._window_s)
        pipe = self._client.pipeline(transaction=False)
        for content_key, sender in items:
            current = self._key(content_key, bucket)
            pipe.pfadd(current, sender)
            pipe.expire(current, 2 * self._window_s)
            pipe.pfcount(current, self._key(content_key, bucket - 1))
        try:
            replies = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"repeat counter: {exc}") from exc
        return [int(count) for count in replies[2::3]]


# ------------------------------------------------------------------------- matchers


class _Text:
    """The views of one text that matchers share, each computed at most once."""

    __slots__ = (
        "_lower",
        "_spans",
        "_words",
        "normalized",
        "open_patterns",
        "original",
        "repeat_count",
        "word_hits",
    )

    def __init__(self, original: str, normalized: str, repeat_count: int) -> None:
        self.original = original
        self.normalized = normalized
        self.repeat_count = repeat_count
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


class _Rule:
    """What every matcher shares: identity, category, weight, allow list, evidence rules."""

    on_normalized = True  # spans refer to the normalised text (else to the original)

    def __init__(self, spec: _Spec) -> None:
        self.id: str = spec.rule_id
        self.category = spec.category()
        self.weight = spec.weight()
        allow = spec.str_list("allow", required=False)
        self.allow = _allow_pattern(allow)
        # First words of the allow phrases: only texts with one of them need the allow scan.
        self.allow_first = frozenset(_WORD.findall(p.lower())[0] for p in allow if _WORD.search(p))
        self.min_matches = spec.integer("min_matches", default=1, minimum=1)

    def find(self, text: _Text) -> list[Span]:
        """Return the matching spans; each matcher kind overrides this."""
        raise NotImplementedError

    def evaluate(self, text: _Text) -> RuleHit | None:
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


class _RegexRule(_Rule):
    """Regular expressions on the lower-cased normalised text (or the original), with
    {{name}} placeholders that expand to a word list."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        field = spec.choice("field", ("normalized", "original"), default="normalized")
        self.on_normalized = field == "normalized"
        lists = {name: spec.words(value, f"lists.{name}") for name, value in spec.table("lists")}
        self.patterns = [
            spec.compile(_expand(pattern, lists, spec), "patterns", self.on_normalized)
            for pattern in spec.str_list("patterns")
        ]
        # "all": every pattern must match (a money amount AND investment wording).
        self.require_all = spec.choice("require", ("any", "all"), default="any") == "all"
        self.first_id = 0  # id of the first pattern in the rule set's prefilter

    def find(self, text: _Text) -> list[Span]:
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


class _WordListRule(_Rule):
    """Whole words and phrases of a list, matched on word boundaries of the normalised text."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        entries = spec.words(spec.raw.get("words", []), "words")
        for index, name in enumerate(spec.str_list("files", required=False)):
            entries += spec.words(name, f"files[{index}]")
        if not entries:
            raise spec.error("words", "give at least one word in `words` or `files`")
        self.singles: set[str] = set()
        self.phrases: list[tuple[str, ...]] = []
        for entry in entries:
            parts = tuple(_WORD.findall(entry.lower()))
            if len(parts) == 1:
                self.singles.add(parts[0])
            elif parts:
                self.phrases.append(parts)
        if spec.boolean("inflect", default=False):
            self.singles |= {
                stem + suffix
                for stem in self.singles
                for suffix, min_stem in _SUFFIXES
                if len(stem) >= min_stem
            }
        self.slot = 0  # this rule's place in the rule set's word index

    def find(self, text: _Text) -> list[Span]:
        """Return the spans the shared word pass found for this rule."""
        return text.word_hits.get(self.slot, [])


class _CapsRule(_Rule):
    """Shouting: the share of upper-case letters in the original, mentions and URLs left out."""

    on_normalized = False

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.min_ratio = spec.number("min_ratio", default=0.7, low=0.0, high=1.0)
        self.min_letters = spec.integer("min_letters", default=12, minimum=1)

    def find(self, text: _Text) -> list[Span]:
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


class _CountRule(_Rule):
    """Runs or counts of something in the original text (letters, punctuation, @, emoji)."""

    on_normalized = False
    pattern: re.Pattern[str]
    min_count = 1
    noun = ""  # when set, evidence starts with the count ("7 mentions")

    def applies(self, original: str) -> bool:
        """Cheap test that the pattern could match at all."""
        return True

    def find(self, text: _Text) -> list[Span]:
        """Return the matches when there are at least min_count of them."""
        if not self.applies(text.original):
            return []
        found = [(m.start(), m.end(), m.group()) for m in self.pattern.finditer(text.original)]
        if len(found) < self.min_count:
            return []
        return [(-1, -1, f"{len(found)} {self.noun}"), *found] if self.noun else found


class _CharRunRule(_CountRule):
    """A letter repeated many times in a row ("sooooo")."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        run = spec.integer("min_run", default=4, minimum=3)
        # Any character here, letters picked below: a class in the pattern scans far slower.
        self.pattern = re.compile(rf"(.)\1{{{run - 1},}}")

    def find(self, text: _Text) -> list[Span]:
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


class _PunctRunRule(_CountRule):
    """Punctuation repeated in a row ("!!!", "?!?!")."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        run = spec.integer("min_run", default=3, minimum=2)
        chars = spec.string("chars", default="!?")
        self.pattern = re.compile(f"[{re.escape(chars)}]{{{run},}}")
        self.pairs = [a + b for a in chars for b in chars]

    def applies(self, original: str) -> bool:
        """Only texts with two such characters in a row can have a run."""
        return any(pair in original for pair in self.pairs)


class _MentionRule(_CountRule):
    """Many @mentions in one message."""

    pattern = _MENTION
    noun = "mentions"

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.min_count = spec.integer("min_count", default=5, minimum=1)

    def applies(self, original: str) -> bool:
        """Only texts with an @ can have mentions."""
        return original.count("@") >= self.min_count


class _EmojiRule(_CountRule):
    """Many emoji in one message."""

    pattern = _EMOJI
    noun = "emoji"

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.min_count = spec.integer("min_count", default=10, minimum=1)

    def applies(self, original: str) -> bool:
        """Only non-ASCII texts can have emoji."""
        return not original.isascii()


class _RepeatRule(_Rule):
    """The same normalised content from many distinct senders within the counter's window."""

    on_normalized = False

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.min_senders = spec.integer("min_senders", default=5, minimum=2)
        self.min_length = spec.integer("min_length", default=20, minimum=1)
        self.window_s = spec.integer("window_s", default=600, minimum=1)

    def find(self, text: _Text) -> list[Span]:
        """Fire when the caller's repeat count reaches the threshold."""
        if text.repeat_count < self.min_senders:
            return []
        return [(0, 0, f"{text.repeat_count} distinct senders")]


# ------------------------------------------------------------------------- shared passes


class _WordIndex:
    """All word-list rules of a rule set as one index, so a text's words are looked up once."""

    def __init__(self, rules: list[_WordListRule]) -> None:
        self.singles: dict[str, list[int]] = {}
        self.phrases: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        for slot, rule in enumerate(rules):
            rule.slot = slot
            for word in rule.singles:
                self.singles.setdefault(word, []).append(slot)
            for phrase in rule.phrases:
                self.phrases.setdefault(phrase[0], []).append((slot, phrase))

    def scan(self, text: _Text) -> dict[int, list[Span]]:
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


class _Prefilter:
    """Finds, for a text, the patterns that could match it, without running them.

    Every match of a pattern contains certain literals: after "\\b(?:kill|stab)\\s+" it must
    contain a word starting with "kill" or "stab". Such conditions ("needs") are read from the
    parsed pattern and the two most selective kept. Word needs are met through one index
    lookup per distinct word of the text; the other needs (a substring, a digit) are tested,
    once per text each, only for the patterns whose word needs are met. Patterns with no usable
    need always run.
    """

    def __init__(self, rules: list[_RegexRule]) -> None:
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

    def open_patterns(self, text: _Text) -> set[int]:
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


# ------------------------------------------------------------------------- loading

_KINDS: dict[str, Callable[[_Spec], _Rule]] = {
    "regex": _RegexRule,
    "wordlist": _WordListRule,
    "caps_ratio": _CapsRule,
    "char_run": _CharRunRule,
    "punct_run": _PunctRunRule,
    "mention_count": _MentionRule,
    "emoji_count": _EmojiRule,
    "repeat_across_senders": _RepeatRule,
}
_COMMON_FIELDS = {"id", "category", "weight", "kind", "description", "enabled", "allow"}
_KIND_FIELDS: dict[str, set[str]] = {
    "regex": {"patterns", "lists", "field", "require", "min_matches"},
    "wordlist": {"words", "files", "inflect", "min_matches"},
    "caps_ratio": {"min_ratio", "min_letters"},
    "char_run": {"min_run"},
    "punct_run": {"min_run", "chars"},
    "mention_count": {"min_count"},
    "emoji_count": {"min_count"},
    "repeat_across_senders": {"min_senders", "min_length", "window_s"},
}


class _Spec:
    """One [[rules]] table being checked: typed access to its fields, errors that name them."""

    def __init__(self, path: Path, index: int, raw: Any, sources: dict[Path, _Source]) -> None:
        self.path = path
        self.sources = sources
        self.rule_id = f"#{index + 1}"
        if not isinstance(raw, dict):
            raise self.error("", "must be a table")
        self.raw: dict[str, Any] = raw
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            raise self.error("id", "must be lower-case letters, digits and _ (at most 64)")
        self.rule_id = rule_id

    def error(self, field: str, problem: str) -> ConfigError:
        """Build the ConfigError for a field of this rule."""
        where = f"field {field!r} " if field else ""
        return ConfigError(f"{self.path}: rule {self.rule_id!r}: {where}{problem}")

    def build(self) -> _Rule | None:
        """Check the kind and fields and build the rule; None when it is disabled."""
        kind = self.raw.get("kind")
        if kind not in _KINDS:
            raise self.error("kind", f"must be one of {sorted(_KINDS)}, not {kind!r}")
        unknown = set(self.raw) - _COMMON_FIELDS - _KIND_FIELDS[kind]
        if unknown:
            raise self.error(sorted(unknown)[0], f"is not a field of a {kind} rule")
        if not self.boolean("enabled", default=True):
            return None
        return _KINDS[kind](self)

    def category(self) -> Category:
        """Read `category`: a harmful Category value."""
        value = self.raw.get("category")
        try:
            category = Category(value if isinstance(value, str) else repr(value))
        except ValueError:
            raise self.error("category", f"unknown category {value!r}") from None
        if category is Category.LOW_RISK:
            raise self.error("category", "a rule cannot flag LOW_RISK")
        return category

    def weight(self) -> float:
        """Read `weight`: a number from 0 to 1."""
        if "weight" not in self.raw:
            raise self.error("weight", "is required")
        return self.number("weight", default=0.0, low=0.0, high=1.0)

    def number(self, field: str, default: float, low: float, high: float) -> float:
        """Read a number within [low, high]."""
        value = self.raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.error(field, f"must be between {low} and {high}, not {value}")
        return float(value)

    def integer(self, field: str, default: int, minimum: int) -> int:
        """Read an integer of at least minimum."""
        value = self.raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"must be an integer, not {value!r}")
        if value < minimum:
            raise self.error(field, f"must be at least {minimum}, not {value}")
        return value

    def boolean(self, field: str, default: bool) -> bool:
        """Read true or false."""
        value = self.raw.get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"must be true or false, not {value!r}")
        return value

    def string(self, field: str, default: str) -> str:
        """Read a non-empty string."""
        value = self.raw.get(field, default)
        if not isinstance(value, str) or not value:
            raise self.error(field, f"must be a non-empty string, not {value!r}")
        return value

    def choice(self, field: str, options: tuple[str, ...], default: str) -> str:
        """Read one of a few strings."""
        value = self.raw.get(field, default)
        if value not in options:
            raise self.error(field, f"must be one of {list(options)}, not {value!r}")
        return str(value)

    def str_list(self, field: str, required: bool = True) -> list[str]:
        """Read a list of non-empty strings (required: and at least one)."""
        value = self.raw.get(field)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(field, "must be a list of non-empty strings")
        if required and not value:
            raise self.error(field, "must not be empty")
        return value

    def table(self, field: str) -> list[tuple[str, Any]]:
        """Read an optional table as (key, value) pairs."""
        value = self.raw.get(field, {})
        if not isinstance(value, dict):
            raise self.error(field, 'must be a table such as { name = "wordlists/x.txt" }')
        return list(value.items())

    def words(self, value: Any, field: str) -> list[str]:
        """Read words given inline (a list) or as a file name relative to the rules file."""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value if v.strip()]
        if not isinstance(value, str):
            raise self.error(field, "must be a word-list file name or a list of words")
        file = (self.path.parent / value).resolve()
        try:
            if file not in self.sources:
                self.sources[file] = _read(file)
            lines = self.sources[file][0].decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(field, f"cannot read word list {value!r} ({exc})") from exc
        return [w for w in (line.strip() for line in lines) if w and not w.startswith("#")]

    def compile(self, pattern: str, field: str, lower: bool) -> re.Pattern[str]:
        """Compile a pattern; on the original text matching ignores case."""
        try:
            return re.compile(pattern, 0 if lower else re.IGNORECASE)
        except re.error as exc:
            raise self.error(field, f"bad regular expression {pattern[:60]!r} ({exc})") from exc


def _expand(pattern: str, lists: dict[str, list[str]], spec: _Spec) -> str:
    """Replace each {{name}} with a pattern that matches any entry of the named list."""

    def alternation(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in lists:
            raise spec.error("patterns", f"uses {{{{{name}}}}} but `lists` has no {name!r}")
        return _alternation(lists[name])

    return _PLACEHOLDER.sub(alternation, pattern)


def _alternation(entries: list[str]) -> str:
    """Build a group matching any entry (case-folded, any white space between words), shaped
    as a trie: re tries a flat list of hundreds of words one by one at every position of the
    text, a trie only along the letters actually there."""
    trie: dict[str, Any] = {}
    for entry in entries:
        node = trie
        for unit in re.findall(r"\s+|.", " ".join(entry.lower().split())):
            node = node.setdefault(r"\s+" if unit.isspace() else re.escape(unit), {})
        node[""] = {}  # an entry ends here
    return f"(?:{_trie_pattern(trie)})"


def _trie_pattern(node: dict[str, Any]) -> str:
    """Write one trie node as a pattern: longer continuations first, then the end."""
    branches = [unit + _trie_pattern(child) for unit, child in sorted(node.items()) if unit]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return body if "" not in node else f"(?:{body})?"


def _allow_pattern(phrases: list[str]) -> re.Pattern[str] | None:
    """Compile an allow list into one pattern of whole phrases on the lower-cased text."""
    if not phrases:
        return None
    return re.compile(rf"(?<![^\W_]){_alternation(phrases)}(?![^\W_])")


def _stat(path: Path) -> tuple[int, int] | None:
    """Return a file's modification time and size, to notice edits cheaply; None if missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


def _read(path: Path) -> _Source:
    """Read a file's bytes, stamping it first."""
    stamp = _stat(path)
    return path.read_bytes(), stamp


def _digest(sources: dict[Path, _Source]) -> str:
    """Hash the rules file and every word list into a short version string."""
    digest = hashlib.sha256()
    for path, (content, _) in sources.items():
        digest.update(path.name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:12]
