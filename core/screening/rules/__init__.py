"""The rules engine: rules are data in a TOML file, evaluated by a small fixed set of matchers.

A rule names a category, a weight and one matcher kind with its parameters; word lists live in
text files next to the rules file. `RuleSet` is one loaded, immutable version of that file;
`RuleFile` swaps in a new version when the file changes on disk; `RedisRepeatCounter` supplies the
cross-event signal (the same content from many senders) that the `repeat_across_senders` rule uses;
`UserHistory` carries the sender's counts that the `repeat_offender` and `message_burst` rules read.

Speed: a text is screened by dozens of patterns, and scanning even a short text with one costs
microseconds. So a rule set first makes two shared passes over the text's words: one finds every
word-list hit, the other (`Prefilter`) finds which patterns could match at all, from literal
words that each pattern's matches must contain. Only those patterns are run.
"""

from core.screening.rules.history import UserHistory
from core.screening.rules.matchers import MAX_EVIDENCE, MAX_EVIDENCE_CHARS, RuleHit
from core.screening.rules.repeat import RedisRepeatCounter, RepeatCounter
from core.screening.rules.ruleset import DEFAULT_RULES_PATH, RuleFile, RuleSet

__all__ = [
    "DEFAULT_RULES_PATH",
    "MAX_EVIDENCE",
    "MAX_EVIDENCE_CHARS",
    "RedisRepeatCounter",
    "RepeatCounter",
    "RuleFile",
    "RuleHit",
    "RuleSet",
    "UserHistory",
]
