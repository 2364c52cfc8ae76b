"""The targets: a report meets them only with the measurements to show it."""

from __future__ import annotations

from typing import Any

from core.quality import targets


def loso_entry(ours: float, peer: float, flagged: float = 0.1) -> dict[str, Any]:
    """One left-out source's report."""
    return {
        "binary": {"macro_f1": ours},
        "peer": {"binary": {"macro_f1": peer}},
        "flagged": flagged,
    }


def report(**overrides: Any) -> dict[str, Any]:
    """A report meeting every target but those overridden."""
    per_category = {c.value: {"f1": 0.7, "precision": 0.7} for c in targets.CATEGORY_F1_OF}
    per_category["SEXUAL"] = {"f1": 0.5, "precision": 0.65}
    result: dict[str, Any] = {
        "leave_one_source_out": {
            "a": loso_entry(0.85, 0.80),
            "b": loso_entry(0.80, 0.81),
            targets.BENIGN_CHAT: loso_entry(0.99, 0.99, flagged=0.01),
        },
        "holdout": {"per_category": per_category},
        "obfuscation": {"kept_overall": 0.99},
    }
    result.update(overrides)
    return result


def test_a_report_meeting_every_target_is_met_everywhere() -> None:
    checks = targets.check(report())
    assert all(met for _, met in checks.values()), checks
    assert checks["loso_max_peer_lead"][0] == 0.01


def test_the_peer_leading_by_more_than_the_margin_misses() -> None:
    loso = report()["leave_one_source_out"] | {"c": loso_entry(0.70, 0.75)}
    checks = targets.check(report(leave_one_source_out=loso))
    assert checks["loso_max_peer_lead"] == [0.05, False]


def test_a_missing_measurement_is_never_met() -> None:
    checks = targets.check(report(holdout={"per_category": {}}))
    assert checks["holdout_f1_SPAM"] == [None, False]
    assert checks["holdout_precision_SEXUAL"] == [None, False]


def test_few_shot_targets_need_recall_and_a_low_benign_flag_rate_together() -> None:
    curve = {
        source: {
            "0": {"binary": {"macro_f1": 0.70}},
            "25": {"spam_recall": 0.9, "benign_flagged": 0.05, "binary": {"macro_f1": 0.8}},
            "50": {"binary": {"macro_f1": 0.85}},
        }
        for source in targets.SPAM_SOURCES
    }
    checks = targets.check(report(adapt_curve=curve))
    assert checks["adapt_k25_sms_spam_spam_recall"] == [0.9, False]  # 5% of benign flagged
    assert checks["adapt_mean_gain_k50"] == [0.15, True]


def suite_result(worst: float, mean: float, peer: float) -> dict[str, Any]:
    """The parts of a functional suite result the targets read."""
    return {"worst": worst, "mean": mean, "peer_mean": peer}


def test_the_functional_suite_meets_its_targets_only_above_every_bar() -> None:
    met = targets.check_functional(suite_result(0.85, 0.92, 0.60))
    assert all(ok for _, ok in met.values()), met
    missed = targets.check_functional(suite_result(0.79, 0.92, 0.93))
    assert not missed["functional_worst_accuracy"][1]
    assert missed["functional_mean_accuracy"][1]
    assert not missed["functional_mean_lead_over_peer"][1]


def test_a_full_report_with_the_suite_carries_its_targets() -> None:
    checks = targets.check(report(functional=suite_result(0.5, 0.6, 0.7)))
    assert checks["functional_mean_accuracy"] == [0.6, False]


def curve(*f1s: float) -> dict[str, Any]:
    """A few-shot curve with these macro-F1s at K = 0, 10, 25."""
    return {str(k): {"binary": {"macro_f1": f1}} for k, f1 in zip((0, 10, 25), f1s, strict=True)}


def test_labels_that_lower_any_source_by_more_than_a_hundredth_miss_the_no_drop_target() -> None:
    kept = targets.check_no_drop({"a": curve(0.70, 0.695, 0.75), "b": curve(0.6, 0.7, 0.8)}, "k")
    assert kept["k_worst_source_drop"] == [0.005, True] and kept["k_mean_drop"][1]
    fell = targets.check_no_drop({"a": curve(0.70, 0.68, 0.75), "b": curve(0.6, 0.7, 0.8)}, "k")
    assert fell["k_worst_source_drop"] == [0.02, False]
    assert fell["k_mean_drop"][1]  # the mean still rose


def test_left_out_sources_name_categories_or_miss() -> None:
    pooled = {
        "TARGETED_HARASSMENT": {"f1": 0.4, "precision": 0.5},
        "HATE_SPEECH": {"f1": 0.65, "precision": 0.7},
        "SEXUAL": {"f1": 0.3, "precision": 0.61},
    }
    checks = targets.check(report(leave_one_source_out_summary={"per_category": pooled}))
    assert checks["loso_f1_TARGETED_HARASSMENT"] == [0.4, False]
    assert checks["loso_f1_HATE_SPEECH"] == [0.65, True]
    assert checks["loso_precision_SEXUAL"] == [0.61, True]


def test_obfuscation_below_ninety_eight_percent_kept_misses() -> None:
    checks = targets.check(report(obfuscation={"kept_overall": 0.975}))
    assert checks["obfuscation_kept"] == [0.975, False]
