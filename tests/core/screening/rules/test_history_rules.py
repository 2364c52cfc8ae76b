"""The history rules fire on the sender's counts, show them, and never fire without history."""

from __future__ import annotations

from core.screening.rules import DEFAULT_RULES_PATH, RuleSet, UserHistory


def _fired(history: UserHistory | None) -> dict[str, tuple[str, ...]]:
    """The history rules that fire on a bland text, with their evidence."""
    rules = RuleSet.load(DEFAULT_RULES_PATH)
    text = "see you at the meeting tomorrow"
    hits = rules.evaluate(text, text, 0, history)
    return {
        h.rule_id: h.evidence for h in hits if h.rule_id in {"repeat_offender", "message_burst"}
    }


def test_a_repeat_offender_and_a_burst_fire_with_their_numbers_as_evidence() -> None:
    fired = _fired(UserHistory(high_risk_24h=4, posts_last_minute=25))
    assert fired == {
        "repeat_offender": ("4 high-risk decisions in 24 h",),
        "message_burst": ("25 messages in the last minute",),
    }


def test_history_below_the_thresholds_fires_nothing() -> None:
    assert _fired(UserHistory(high_risk_24h=2, posts_last_minute=19)) == {}


def test_an_event_without_history_never_fires_the_history_rules() -> None:
    # Evaluation rows carry no history: these rules cannot change `make eval`'s figures.
    assert _fired(None) == {}
    assert _fired(UserHistory()) == {}
