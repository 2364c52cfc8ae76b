"""The quality targets of the screening engine, and which of them a report meets.

Each check is `[value, met]`; a value of None (the measurement was not run) is never met.
"""

from __future__ import annotations

from typing import Any

from core.models import Category

LOSO_MEAN_MACRO_F1 = 0.80
LOSO_WORST_MACRO_F1 = 0.65
PEER_MARGIN = 0.02  # the peer may beat us on no source by more than this
BENIGN_CHAT = "topical_chat"
BENIGN_CHAT_FLAGGED = 0.02
CATEGORY_F1 = 0.60
CATEGORY_F1_OF = (
    Category.SPAM,
    Category.TOXIC,
    Category.TARGETED_HARASSMENT,
    Category.HATE_SPEECH,
)
SEXUAL_PRECISION = 0.60
# Per category on the left-out sources that carry the category (pooled): naming it right there is
# what routing by category on new traffic needs.
LOSO_CATEGORY_F1_OF = (Category.TARGETED_HARASSMENT, Category.HATE_SPEECH)
OBFUSCATION_KEPT = 0.98
SPAM_SOURCES = ("scamspot_instagram", "sms_spam", "tg_spam")
ADAPT_SPAM_K = 25
ADAPT_SPAM_RECALL = 0.85
ADAPT_BENIGN_FLAGGED = 0.03
ADAPT_GAIN_K = 50
ADAPT_GAIN = 0.10
ADAPT_MAX_DROP = 0.01  # no K below K = 0 by more than this, on the mean or on any source
FUNCTIONAL_WORST = 0.80  # every functionality of the suite, on its test templates
FUNCTIONAL_MEAN = 0.90


def _check(value: float | None, met: bool) -> list[Any]:
    """One target's entry: the value (rounded) and whether it is met."""
    return [None if value is None else round(value, 4), value is not None and met]


def check_functional(suite: dict[str, Any]) -> dict[str, list[Any]]:
    """The functional suite's targets: its worst and mean accuracy, and the lead over the peer."""
    worst, mean, peer = suite["worst"], suite["mean"], suite.get("peer_mean")
    lead = None if peer is None else mean - peer
    return {
        "functional_worst_accuracy": _check(worst, worst >= FUNCTIONAL_WORST),
        "functional_mean_accuracy": _check(mean, mean >= FUNCTIONAL_MEAN),
        "functional_mean_lead_over_peer": _check(lead, lead is not None and lead > 0),
    }


def check_no_drop(curves: dict[str, dict[str, Any]], name: str) -> dict[str, list[Any]]:
    """Whether labels never hurt: the largest fall below the first point, per source and mean."""
    falls = {
        point: [
            c["0"]["binary"]["macro_f1"] - c[point]["binary"]["macro_f1"] for c in curves.values()
        ]
        for point in next(iter(curves.values()))
    }
    worst = max(max(values) for values in falls.values())
    mean = max(sum(values) / len(values) for values in falls.values())
    return {
        f"{name}_worst_source_drop": _check(worst, worst <= ADAPT_MAX_DROP),
        f"{name}_mean_drop": _check(mean, mean <= ADAPT_MAX_DROP),
    }


def check(result: dict[str, Any]) -> dict[str, list[Any]]:
    """Every target the report has the measurements for."""
    loso = result["leave_one_source_out"]
    f1s = {name: r["binary"]["macro_f1"] for name, r in loso.items()}
    gaps = {name: r["peer"]["binary"]["macro_f1"] - f1s[name] for name, r in loso.items()}
    mean = sum(f1s.values()) / len(f1s)
    worst = min(f1s.values())
    gap = max(gaps.values())
    out = {
        "loso_mean_macro_f1": _check(mean, mean >= LOSO_MEAN_MACRO_F1),
        "loso_worst_macro_f1": _check(worst, worst >= LOSO_WORST_MACRO_F1),
        "loso_max_peer_lead": _check(gap, gap <= PEER_MARGIN),
    }
    chat = loso.get(BENIGN_CHAT, {}).get("flagged")
    out["benign_chat_flagged"] = _check(chat, chat is not None and chat <= BENIGN_CHAT_FLAGGED)
    per_category = result["holdout"]["per_category"]
    for category in CATEGORY_F1_OF:
        f1 = per_category.get(category.value, {}).get("f1")
        out[f"holdout_f1_{category.value}"] = _check(f1, f1 is not None and f1 >= CATEGORY_F1)
    precision = per_category.get(Category.SEXUAL.value, {}).get("precision")
    out["holdout_precision_SEXUAL"] = _check(
        precision, precision is not None and precision >= SEXUAL_PRECISION
    )
    pooled = result.get("leave_one_source_out_summary", {}).get("per_category")
    if pooled is not None:
        for category in LOSO_CATEGORY_F1_OF:
            f1 = pooled.get(category.value, {}).get("f1")
            out[f"loso_f1_{category.value}"] = _check(f1, f1 is not None and f1 >= CATEGORY_F1)
        precision = pooled.get(Category.SEXUAL.value, {}).get("precision")
        out["loso_precision_SEXUAL"] = _check(
            precision, precision is not None and precision >= SEXUAL_PRECISION
        )
    kept = result.get("obfuscation", {}).get("kept_overall")
    out["obfuscation_kept"] = _check(kept, kept is not None and kept >= OBFUSCATION_KEPT)
    if "functional" in result:
        out.update(check_functional(result["functional"]))
    curves = result.get("adapt_curve")
    if curves:
        for source in SPAM_SOURCES:
            point = curves.get(source, {}).get(str(ADAPT_SPAM_K), {})
            recall, flagged = point.get("spam_recall"), point.get("benign_flagged")
            met = (
                recall is not None
                and flagged is not None
                and recall >= ADAPT_SPAM_RECALL
                and flagged <= ADAPT_BENIGN_FLAGGED
            )
            out[f"adapt_k{ADAPT_SPAM_K}_{source}_spam_recall"] = _check(recall, met)
            out[f"adapt_k{ADAPT_SPAM_K}_{source}_benign_flagged"] = _check(flagged, met)
        gains = [
            c[str(ADAPT_GAIN_K)]["binary"]["macro_f1"] - c["0"]["binary"]["macro_f1"]
            for c in curves.values()
        ]
        gain = sum(gains) / len(gains)
        out[f"adapt_mean_gain_k{ADAPT_GAIN_K}"] = _check(gain, gain >= ADAPT_GAIN)
        out.update(check_no_drop(curves, "adapt"))
    return out
