"""The rules engine: rules are data in a TOML file, evaluated by a small fixed set of matchers.

A rule names a category, a weight and one matcher kind with its parameters; word lists live in
text files next to the rules file. `RuleSet` is one loaded, immutable version of that file;
`RuleFile` swaps in a new version when the file changes on disk; `RedisRepeatCounter` supplies the
cross-event signal (the same content from many senders) that the `repeat_across_senders` rule uses.

Speed: a text is screened by dozens of patterns, and scanning even a short text with one costs
microseconds. So a rule set first makes two shared passes over the text's words: one finds every
word-list hit, the other (`Prefilter`) finds which patterns could match at all, from literal
words that each pattern's matches must contain. Only those patterns are run.

This module is the public face; the parts live below it, each importing only from those under
it: core.rulefile reads and checks the file, core.matchers holds the matchers and the word
index, core.prefilter the pattern prefilter.
"""

from __future__ import annotations

import hashlib
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import redis
import structlog

from core.errors import ConfigError, StoreUnavailable
from core.matchers import (
    KINDS,
    MAX_EVIDENCE,
    MAX_EVIDENCE_CHARS,
    Matcher,
    RegexMatcher,
    RepeatMatcher,
    RuleHit,
    TextView,
    WordIndex,
    WordListMatcher,
)
from core.prefilter import Prefilter
from core.rulefile import RuleSpec, Source, digest, read, stat

__all__ = [
    "DEFAULT_RULES_PATH",
    "MAX_EVIDENCE",
    "MAX_EVIDENCE_CHARS",
    "RedisRepeatCounter",
    "RepeatCounter",
    "RuleFile",
    "RuleHit",
    "RuleSet",
]

DEFAULT_RULES_PATH = Path(__file__).parent / "data" / "rules.toml"

log = structlog.get_logger(__name__)


class RuleSet:
    """One loaded version of a rules file: evaluate texts, and key content for repeat counting."""

    def __init__(self, path: Path, rules: list[Matcher], sources: dict[Path, Source]) -> None:
        self.path = path
        self.sources = tuple(sources)  # the rules file and every word list it read
        # Stamps taken just before each file was read: an edit that lands during the load then
        # shows as a change, and RuleFile loads once more.
        self.stamp = tuple(stamp for _, stamp in sources.values())
        self.version: str = digest(sources)
        self.rule_ids: tuple[str, ...] = tuple(rule.id for rule in rules)
        self._rules = rules
        self._words = WordIndex([r for r in rules if isinstance(r, WordListMatcher)])
        self._prefilter = Prefilter([r for r in rules if isinstance(r, RegexMatcher)])
        # What each rule needs from the shared passes, so idle rules are skipped cheaply.
        self._plan = [
            (
                rule,
                frozenset(range(rule.first_id, rule.first_id + len(rule.patterns)))
                if isinstance(rule, RegexMatcher)
                else None,
                rule.slot if isinstance(rule, WordListMatcher) else None,
            )
            for rule in rules
        ]
        repeat = next((r for r in rules if isinstance(r, RepeatMatcher)), None)
        self.repeat_min_length: int | None = repeat.min_length if repeat else None
        self.repeat_window_s: int | None = repeat.window_s if repeat else None

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Read and check a rules file; raise ConfigError naming the rule and field at fault."""
        sources: dict[Path, Source] = {}
        try:
            sources[path] = read(path)
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
        rules: list[Matcher] = []
        for index, raw in enumerate(raw_rules):
            spec = RuleSpec(path, index, raw, sources)
            rule = spec.build(KINDS)
            if rule is None:
                continue
            if rule.id in {r.id for r in rules}:
                raise spec.error("id", "is used by an earlier rule")
            if isinstance(rule, RepeatMatcher) and any(isinstance(r, RepeatMatcher) for r in rules):
                raise spec.error("kind", "only one repeat_across_senders rule is allowed")
            rules.append(rule)
        return cls(path, rules, sources)

    def evaluate(self, original: str, normalized: str, repeat_count: int = 0) -> list[RuleHit]:
        """Return the hits of every enabled rule on one text, in file order."""
        text = TextView(original, normalized, repeat_count)
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
        stamp = tuple(stat(source) for source in self._current.sources)
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
