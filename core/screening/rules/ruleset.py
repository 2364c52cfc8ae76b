"""Rule sets: one loaded version of a rules file, and the file that swaps in new versions.

The rule set makes two shared passes over a text's words (every word-list hit, and the
patterns that could match at all) before any rule runs; see the package docstring.

The parts live below this module, each importing only from those under it: `spec` reads and
checks the file, `matchers`, `counts` and `repeat` hold the matchers and the word index,
`prefilter` the pattern prefilter.
"""

from __future__ import annotations

import hashlib
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from core.errors import ConfigError
from core.screening.rules.counts import (
    CapsMatcher,
    CharRunMatcher,
    EmojiCountMatcher,
    MentionMatcher,
    MixedScriptMatcher,
    PunctRunMatcher,
)
from core.screening.rules.history import MessageBurstMatcher, RepeatOffenderMatcher, UserHistory
from core.screening.rules.matchers import (
    Matcher,
    RegexMatcher,
    RuleHit,
    TextView,
    WordIndex,
    WordListMatcher,
)
from core.screening.rules.prefilter import Prefilter
from core.screening.rules.repeat import RepeatMatcher
from core.screening.rules.spec import (
    RuleContext,
    RulesDocument,
    RuleSpec,
    digest,
    read,
    stat,
)

DEFAULT_RULES_PATH = Path(__file__).parent.parent / "data" / "rules.toml"

# The matcher each rule `kind` builds; regex and word-list rules also read files and patterns.
KINDS: dict[str, Callable[[Any, RuleContext], Matcher]] = {
    "regex": RegexMatcher,
    "wordlist": WordListMatcher,
    "caps_ratio": lambda spec, _: CapsMatcher(spec),
    "char_run": lambda spec, _: CharRunMatcher(spec),
    "punct_run": lambda spec, _: PunctRunMatcher(spec),
    "mention_count": lambda spec, _: MentionMatcher(spec),
    "emoji_count": lambda spec, _: EmojiCountMatcher(spec),
    "mixed_script": lambda spec, _: MixedScriptMatcher(spec),
    "repeat_across_senders": lambda spec, _: RepeatMatcher(spec),
    "repeat_offender": lambda spec, _: RepeatOffenderMatcher(spec),
    "message_burst": lambda spec, _: MessageBurstMatcher(spec),
}

log = structlog.get_logger(__name__)


class RuleSet:
    """One loaded version of a rules file: evaluate texts, and key content for repeat counting."""

    def __init__(
        self, path: Path, rules: list[Matcher], sources: dict[Path, tuple[bytes, Any]]
    ) -> None:
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

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Read and check a rules file; raise ConfigError naming the rule and field at fault."""
        context = RuleContext(path)
        try:
            context.sources[path] = read(path)
            raw = tomllib.loads(context.sources[path][0].decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the rules file ({exc})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        unknown = set(raw) - set(RulesDocument.model_fields)
        if unknown:
            raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}")
        try:
            document = RulesDocument.model_validate(raw)
        except ValidationError:
            raise ConfigError(f"{path}: needs a non-empty [[rules]] array of tables") from None
        rules: list[Matcher] = []
        for index, table in enumerate(document.rules):
            spec: RuleSpec = context.spec(index, table)
            if not spec.enabled:
                continue
            if spec.id in {r.id for r in rules}:
                raise context.error(spec.id, "id", "is used by an earlier rule")
            if spec.kind == "repeat_across_senders" and any(
                isinstance(r, RepeatMatcher) for r in rules
            ):
                raise context.error(
                    spec.id, "kind", "only one repeat_across_senders rule is allowed"
                )
            rules.append(KINDS[spec.kind](spec, context))
        return cls(path, rules, context.sources)

    def evaluate(
        self,
        original: str,
        normalized: str,
        repeat_count: int = 0,
        history: UserHistory | None = None,
    ) -> list[RuleHit]:
        """Return the hits of every enabled rule on one text, in file order."""
        text = TextView(original, normalized, repeat_count, history)
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
