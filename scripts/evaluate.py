"""`make eval`: measure the screening engine's quality.

    make eval                                  held-out split + leave-one-source-out + obfuscation
    make eval DATA=file.csv REPORT=out.json    the shipped engine on any CSV with text,label

Leave-one-source-out trains on every redistributable source but one and tests on that one (and
tests on the sources we may not ship with the engine trained on all that we ship): it is the
figure that predicts quality on traffic from places we have no data from. Both modes also run
alt-profanity-check on the same rows as a peer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.logs import configure_logging
from core.models import Category
from core.quality import crossval, obfuscation
from core.quality.evaluation import (
    format_table,
    peer_predictions,
    read_labelled_csv,
    read_shared_sources,
    report,
)
from core.screening.embedding import load_embedder
from core.screening.engine import ScreenItem, load_engine
from core.screening.reference import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.rules import DEFAULT_RULES_PATH, RuleFile
from core.screening.scoring import DEFAULT_SCORING_PATH, ScoringConfig
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "accuracy": 0.90,
    "macro_f1": 0.85,
    "peer_margin": 0.10,
    "spam_recall": 0.90,
    "obfuscation": 0.90,
}


def say(text: str = "") -> None:
    """Print a line of the report."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def evaluate_file(settings: Settings, data_path: Path, report_path: Path | None) -> dict[str, Any]:
    """Run the shipped engine on one labelled CSV."""
    data = read_labelled_csv(data_path)
    engine = load_engine(settings)
    predicted = crossval.screen_all(engine, data.texts)
    result = report(data, predicted, peer_predictions(data.texts))
    say(format_table(str(data_path), result))
    if report_path:
        report_path.write_text(json.dumps(result, indent=2))
        say(f"written to {report_path}")
    return result


def obfuscation_suite(engine: Any, texts: list[str], limit: int) -> dict[str, Any]:
    """How many obfuscated variants of flagged harmful texts keep their high-risk verdict."""
    flagged = [
        text
        for text, decision in zip(
            texts, engine.screen([ScreenItem(text=t) for t in texts]), strict=True
        )
        if decision.route == "high"
    ]
    chosen = obfuscation.sample(flagged, limit)
    triggers = obfuscation.trigger_words()
    kept: dict[str, list[bool]] = {name: [] for name in obfuscation.REWRITES}
    for start in range(0, len(chosen), crossval.BATCH):
        batch = chosen[start : start + crossval.BATCH]
        rewritten = [obfuscation.variants(text, triggers) for text in batch]
        for name in obfuscation.REWRITES:
            items = [ScreenItem(text=v[name]) for v in rewritten]
            kept[name] += [d.route == "high" for d in engine.screen(items)]
    per = {name: round(float(np.mean(flags)), 4) for name, flags in kept.items() if flags}
    overall = float(np.mean([f for flags in kept.values() for f in flags])) if chosen else 0.0
    return {"examples": len(chosen), "kept_overall": round(overall, 4), "kept_by_rewrite": per}


def evaluate_shared(settings: Settings, shared: Path, tune: bool, limit: int) -> dict[str, Any]:
    """Held-out split, leave-one-source-out and the obfuscation suite on the shared data."""
    started = time.monotonic()
    data = read_shared_sources(shared)
    trainable = set(ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH).sources)
    embedder = load_embedder(
        settings.embed_model,
        settings.embed_backend,
        settings.embed_device,
        settings.embed_batch_size,
        settings.embed_threads,
        settings.model_dir,
    )
    vectors = crossval.cached_vectors(embedder, data, settings.var_dir / "eval")
    lookup = crossval.LookupEmbedder(embedder, data.texts, vectors)
    rules = RuleFile(settings.rules_path or DEFAULT_RULES_PATH)
    scoring = ScoringConfig.load(settings.scoring_path or DEFAULT_SCORING_PATH)
    say(
        f"{len(data)} labelled texts from {len(set(data.sources))} sources; trained on "
        f"{sorted(trainable)}; model {embedder.name}; scoring {scoring.version}"
    )

    holdout = crossval.stratified_holdout(data, trainable)
    engine = crossval.fold_engine(holdout, data, lookup, rules, scoring)
    test = data.select(holdout.test)
    result: dict[str, Any] = {
        "model": embedder.name,
        "scoring": scoring.model_dump(mode="json"),
        "holdout": report(
            test, crossval.screen_all(engine, test.texts), peer_predictions(test.texts)
        ),
    }
    say(format_table("held-out split (20%, stratified, seed 0)", result["holdout"]))

    harmful = [
        t
        for t, label in zip(test.texts, test.labels, strict=True)
        if label is not Category.LOW_RISK
    ]
    result["obfuscation"] = obfuscation_suite(engine, harmful, limit)
    say(f"obfuscation: {result['obfuscation']}")

    loso: dict[str, Any] = {}
    analyses = []
    for fold in crossval.leave_one_source_out(data, trainable):
        if tune:
            fold_test, analysis = crossval.analyse_fold(fold, data, lookup, rules, scoring)
            analyses.append((fold_test, analysis))
            predicted = [
                Category(crossval.CATEGORY_NAMES[i])
                for i in analysis.score(scoring, [None] * len(fold_test)).category
            ]
        else:
            fold_test, predicted = crossval.run_fold(fold, data, lookup, rules, scoring)
        loso[fold.name] = report(fold_test, predicted, peer_predictions(fold_test.texts))
        say(format_table(f"leave-one-source-out: {fold.name}", loso[fold.name]))
    result["leave_one_source_out"] = loso
    result["leave_one_source_out_summary"] = crossval.summarise(loso)
    result["spam_recall_when_source_left_out"] = {
        name: r["per_category"]["SPAM"]["recall"]
        for name, r in loso.items()
        if r["per_category"].get("SPAM", {}).get("support")
    }
    result["targets"] = check_targets(result)
    if tune:
        ranked = crossval.tune(analyses, scoring)
        result["tuning"] = [
            {"mean_macro_f1": round(f1, 4), "mean_accuracy": round(acc, 4),
             "rules_weight": c.rules_weight, "head_weight": c.head_weight, "any": c.thresholds.any}
            for f1, acc, c in ranked[:10]
        ]  # fmt: skip
        say("best blends on leave-one-source-out (mean macro-F1, mean accuracy, config):")
        for row in result["tuning"]:
            say(f"  {row}")
    say(f"summary: {result['leave_one_source_out_summary']}")
    say(f"spam recall when its source is left out: {result['spam_recall_when_source_left_out']}")
    say(f"targets: {json.dumps(result['targets'])}")
    say(f"({time.monotonic() - started:.0f} s)")
    return result


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """Which of the issue's quality targets are met."""
    loso = result["leave_one_source_out"]
    worst_accuracy = min(r["binary"]["accuracy"] for r in loso.values())
    worst_f1 = min(r["binary"]["macro_f1"] for r in loso.values())
    margin = min(r["binary"]["macro_f1"] - r["peer"]["binary"]["macro_f1"] for r in loso.values())
    spam = result["spam_recall_when_source_left_out"]
    return {
        "loso_worst_accuracy": [worst_accuracy, worst_accuracy >= TARGETS["accuracy"]],
        "loso_worst_macro_f1": [worst_f1, worst_f1 >= TARGETS["macro_f1"]],
        "loso_min_margin_over_peer": [round(margin, 4), margin >= TARGETS["peer_margin"]],
        "spam_recall_left_out_min": [min(spam.values()) if spam else None,
                                     bool(spam) and min(spam.values()) >= TARGETS["spam_recall"]],
        "obfuscation_kept": [result["obfuscation"]["kept_overall"],
                             result["obfuscation"]["kept_overall"] >= TARGETS["obfuscation"]],
    }  # fmt: skip


def main() -> None:
    """Parse arguments and run the chosen evaluation."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="CSV with text,label columns")
    parser.add_argument("--report", type=Path, help="where to write the JSON report")
    parser.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data")),
        help="the shared labelled data directory (default ../shared/data)",
    )
    parser.add_argument("--tune", action="store_true", help="also rank blends and thresholds")
    parser.add_argument("--obfuscation-examples", type=int, default=300)
    options = parser.parse_args()
    settings = Settings()
    configure_logging("WARNING")
    if options.data:
        evaluate_file(settings, options.data, options.report)
        return
    result = evaluate_shared(settings, options.shared, options.tune, options.obfuscation_examples)
    path = options.report or settings.var_dir / "eval" / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    say(f"written to {path}")


if __name__ == "__main__":
    main()
