"""Signals from the sender's history (`UserHistory`): a repeat offender, a burst of messages.

The counts come with each event (the screening task reads them from the per-user counters the
pipeline keeps next to every decision); an event without history (an evaluation row, a bare
text) has none, and these rules never fire on it.
"""

from __future__ import annotations

from core.screening.rules.matchers import Matcher, Span, TextView, UserHistory
from core.screening.rules.spec import MessageBurstRule, RepeatOffenderRule

__all__ = ["MessageBurstMatcher", "RepeatOffenderMatcher", "UserHistory"]


class RepeatOffenderMatcher(Matcher):
    """Fires when the sender had at least `min_high_risk` high-risk decisions in 24 hours."""

    on_normalized = False

    def __init__(self, spec: RepeatOffenderRule) -> None:
        super().__init__(spec)
        self.min_high_risk = spec.min_high_risk

    def find(self, text: TextView) -> list[Span]:
        """Evidence names the count."""
        count = text.history.high_risk_24h if text.history else 0
        if count < self.min_high_risk:
            return []
        return [(0, 0, f"{count} high-risk decisions in 24 h")]


class MessageBurstMatcher(Matcher):
    """Fires when the sender posted at least `min_posts` messages within a minute."""

    on_normalized = False

    def __init__(self, spec: MessageBurstRule) -> None:
        super().__init__(spec)
        self.min_posts = spec.min_posts

    def find(self, text: TextView) -> list[Span]:
        """Evidence names the count."""
        count = text.history.posts_last_minute if text.history else 0
        if count < self.min_posts:
            return []
        return [(0, 0, f"{count} messages in the last minute")]
