"""`make eval`: measure the screening engine's quality against the targets, in one report.

    make eval                                  held-out split, leave-one-source-out over every
                                               shared source, obfuscation, targets
    make eval EVAL_ARGS=--adapt-curve          also few-shot curves (K = 0, 10, 25, 50, 100
                                               runtime examples per label) per source left out
    make eval EVAL_ARGS=--functional-only      only the functional suite (minutes): the shipped
                                               engine on the suite's test templates
    make eval EVAL_ARGS="--loso-only --rows 1500"  only leave-one-source-out (at most 1500 rows
                                               tested per source) and obfuscation: the quick
                                               check of a recipe change
    make eval EVAL_ARGS="--sources a,b"        few-shot curves of the shipped engine on sources
                                               it never trained on: K per label and moderator
                                               reviews of flagged rows (--rows caps each source)
    make eval EVAL_ARGS="--index-types flat,ivf-pq --sources a,b"
                                               the shipped engine's decisions with each
                                               REFERENCE_INDEX type on the same rows of those
                                               sources and the functional suite, against the
                                               first type's: macro-F1 and decisions changed
    make eval DATA=file.csv REPORT=out.json    the shipped engine on any CSV with text,label
    make eval DATA=file.csv ADAPT=25           first add 25 rows per label of the file (seeded,
                                               stratified) as runtime examples, then measure on
                                               the remaining rows only

Leave-one-source-out trains the whole recipe (head, blender, index) on every redistributable
source but one and tests on that one; sources we may not ship are always left out. It is the
figure that predicts quality on traffic from places we have no data from. Every mode also runs
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
from core.quality import crossval, fewshot, functional, obfuscation, targets
from core.quality.corpus import Corpus
from core.quality.evaluation import (
    LabelledTexts,
    binary_metrics,
    format_table,
    peer_predictions,
    pooled_categories,
    read_labelled_csv,
    read_shared_sources,
    report,
)
from core.screening.engine import ScreeningEngine, ScreenItem, configured_embedder, load_engine
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.spec import IndexSpec
from core.screening.reference.vectors import load_or_embed
from core.screening.rules import DEFAULT_RULES_PATH, RuleFile
from core.screening.scoring.bundle import DEFAULT_MODEL_PATH, ModelBundle
from core.screening.scoring.config import DEFAULT_SCORING_PATH, ScoringConfig
from core.screening.text.normalization import normalize
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def say(text: str = "") -> None:
    """Print a line of the report."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def evaluate_file(
    settings: Settings, data_path: Path, report_path: Path | None, adapt: int
) -> dict[str, Any]:
    """Run the shipped engine on one labelled CSV, optionally after K examples per label."""
    data = read_labelled_csv(data_path)
    engine = load_engine(settings)
    tenant = crossval.ADAPT_TENANT if adapt else None
    keep = np.ones(len(data), dtype=bool)
    if adapt:
        chosen = crossval.adapt_sample(data.labels, adapt)
        engine.add_examples(
            [data.texts[i] for i in chosen],
            [data.labels[i] for i in chosen],
            [f"{data_path.name}:{i}" for i in chosen],
            tenant=tenant,
        )
        keep[chosen] = False
    test = data.select(keep)
    predicted = [
        decision.category
        for start in range(0, len(test), crossval.BATCH)
        for decision in engine.screen(
            [ScreenItem(text=t, tenant=tenant) for t in test.texts[start : start + crossval.BATCH]]
        )
    ]
    result = report(test, predicted, peer_predictions(test.texts))
    if adapt:
        result["adapt"] = {"k": adapt, "added": int((~keep).sum())}
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


def functional_suite(engine: ScreeningEngine) -> dict[str, Any]:
    """The functional suite on its test templates, the engine next to the peer, printed."""
    result = functional.measure(
        functional.Suite.load(),
        lambda texts: crossval.screen_all(engine, texts),
        peer_predictions,
    )
    say(functional.format_table(result))
    return result


def sampled(data: LabelledTexts, limit: int, seed: int = 0) -> LabelledTexts:
    """At most `limit` rows, each label keeping its share (seeded)."""
    if len(data) <= limit:
        return data
    rng = np.random.default_rng(seed)
    names = np.array([label.value for label in data.labels])
    keep = np.zeros(len(data), dtype=bool)
    for name in sorted(set(names.tolist())):
        rows = np.flatnonzero(names == name)
        keep[rng.permutation(rows)[: round(len(rows) * limit / len(data))]] = True
    return data.select(keep)


def evaluate_sources(
    settings: Settings, shared: Path, names: list[str], limit: int
) -> dict[str, Any]:
    """Few-shot curves of the shipped engine on sources it never trained on (minutes)."""
    started = time.monotonic()
    data = read_shared_sources(shared)
    trained = set(ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH).sources)
    if set(names) & trained:
        raise SystemExit(f"the shipped engine trained on {sorted(set(names) & trained)}")
    engine = load_engine(settings)
    result: dict[str, Any] = {"scoring": engine.scoring.version, "sources": {}}
    for name in names:
        source = sampled(data.select(np.array(data.sources) == name), limit)
        if not len(source):
            raise SystemExit(f"no source {name} under {shared}")
        analysis = crossval.analyse_all(engine, source.texts)
        peer = peer_predictions(source.texts)
        curves = {
            "per_label": fewshot.per_label_curve(engine, source, analysis, peer),
            "reviews": fewshot.review_curve(engine, source, analysis, peer),
        }
        result["sources"][name] = {"n": len(source), **curves}
        say(fewshot.format_curves(name, curves))
    sources = result["sources"]
    result["targets"] = {
        **targets.check_no_drop({n: s["per_label"] for n, s in sources.items()}, "per_label"),
        **targets.check_no_drop({n: s["reviews"] for n, s in sources.items()}, "reviews"),
    }
    say(targets_table(result["targets"]))
    say(f"({time.monotonic() - started:.0f} s)")
    return result


def compare_index_types(
    settings: Settings, shared: Path, names: list[str], limit: int, kinds: list[str]
) -> dict[str, Any]:
    """The shipped engine with each index type on the same texts (the sources' sampled rows and
    the functional suite's test cases), each against the first type: macro-F1, decisions changed."""
    data = read_shared_sources(shared)
    groups = {name: sampled(data.select(np.array(data.sources) == name), limit) for name in names}
    cases = functional.Suite.load().cases("test")
    groups["functional"] = LabelledTexts(
        [c.text for c in cases], [c.label for c in cases], ["functional"] * len(cases)
    )
    texts = [text for group in groups.values() for text in group.texts]
    engine = load_engine(settings)
    # Embedded once: every type screens the very same vectors.
    vectors = engine.embedder.encode([normalize(text) for text in texts])
    engine.embedder = crossval.LookupEmbedder(engine.embedder, texts, vectors)
    reference = ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH)
    spec = {
        "nprobe": settings.reference_index_nprobe,
        "ef_search": settings.reference_index_ef_search,
    }
    found: dict[str, dict[str, list[Category]]] = {}
    result: dict[str, Any] = {"baseline": kinds[0], "search": spec, "types": {}}
    for kind in kinds:
        index_spec = IndexSpec(kind, settings.reference_index_nlist, **spec)
        engine.index = load_or_embed(settings.var_dir, engine.embedder, reference, index_spec).index
        found[kind] = {name: crossval.screen_all(engine, g.texts) for name, g in groups.items()}
        rows: dict[str, Any] = {}
        for name, group in groups.items():
            mine, base = found[kind][name], found[kinds[0]][name]
            flagged = np.array([c is not Category.LOW_RISK for c in mine])
            first = np.array([c is not Category.LOW_RISK for c in base])
            f1 = binary_metrics(group.harmful(), flagged)["macro_f1"]
            f1_base = binary_metrics(group.harmful(), first)["macro_f1"]
            rows[name] = {
                "n": len(group),
                "macro_f1": f1,
                "macro_f1_diff": round(f1 - f1_base, 4),
                "route_changed": int(np.sum(flagged != first)),
                "category_changed": sum(a is not b for a, b in zip(mine, base, strict=True)),
            }
            say(f"{kind:<10} {name:<12} {rows[name]}")
        result["types"][kind] = rows
    return result


def load_corpus(settings: Settings, shared: Path) -> Corpus:
    """Every shared source and the suite's training frames, embedded (cached) and prepared."""
    corpus = Corpus.load(
        read_shared_sources(shared),
        set(ReferenceSet.load(settings.reference_path or DEFAULT_REFERENCE_PATH).sources),
        embedder=configured_embedder(settings),
        rules=RuleFile(settings.rules_path or DEFAULT_RULES_PATH),
        scoring=ScoringConfig.load(settings.scoring_path or DEFAULT_SCORING_PATH),
        profanity=ModelBundle.load(settings.trained_model_path or DEFAULT_MODEL_PATH).profanity,
        cache_dir=settings.var_dir / "eval",
    )
    say(
        f"{len(corpus.data)} labelled texts from {len(set(corpus.data.sources))} sources; trained"
        f" on {sorted(corpus.trainable | corpus.augmentation)}; model {corpus.lookup.name};"
        f" scoring {corpus.scoring.version}"
    )
    return corpus


def leave_one_source_out(
    corpus: Corpus, curve: bool, rows: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each source left out in turn (at most `rows` of its rows tested): reports and curves."""
    loso: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for fold in crossval.leave_one_source_out(corpus.data, corpus.trainable, corpus.augmentation):
        engine = corpus.engine(fold)
        fold_test = corpus.data.select(fold.test)
        if rows:
            fold_test = sampled(fold_test, rows)
        analysis = crossval.analyse_all(engine, fold_test.texts)
        predicted = crossval.categories(engine, analysis)
        peer = peer_predictions(fold_test.texts)
        loso[fold.name] = report(fold_test, predicted, peer)
        loso[fold.name]["flagged"] = fewshot.flagged_share(predicted)
        loso[fold.name]["predicted"] = [c.value for c in predicted]
        loso[fold.name]["truth"] = [c.value for c in fold_test.labels]
        say(format_table(f"leave-one-source-out: {fold.name}", loso[fold.name]))
        if curve:
            curves[fold.name] = fewshot.per_label_curve(engine, fold_test, analysis, peer)
    return loso, curves


def loso_summary(loso: dict[str, Any]) -> dict[str, Any]:
    """Mean and worst macro-F1 over the left-out sources, the peer's mean, and per category
    precision, recall and F1 over the left-out sources that carry each category."""
    f1s = [r["binary"]["macro_f1"] for r in loso.values()]
    parts = [
        ([Category(c) for c in r.pop("truth")], [Category(c) for c in r.pop("predicted")])
        for r in loso.values()
    ]
    return {
        "sources": len(loso),
        "mean_macro_f1": round(float(np.mean(f1s)), 4),
        "worst_macro_f1": round(float(np.min(f1s)), 4),
        "worst_source": min(loso, key=lambda name: loso[name]["binary"]["macro_f1"]),
        "peer_mean_macro_f1": round(
            float(np.mean([r["peer"]["binary"]["macro_f1"] for r in loso.values()])), 4
        ),
        "per_category": pooled_categories(parts),
    }


def evaluate_loso(settings: Settings, shared: Path, rows: int, limit: int) -> dict[str, Any]:
    """Leave-one-source-out over every shared source (at most `rows` tested per source) and
    the obfuscation suite on the held-out split's engine: the quick check of a recipe change."""
    started = time.monotonic()
    corpus = load_corpus(settings, shared)
    holdout = crossval.stratified_holdout(
        corpus.data, corpus.trainable, augmentation=corpus.augmentation
    )
    test = corpus.data.select(holdout.test)
    harmful = [
        t for t, c in zip(test.texts, test.labels, strict=True) if c is not Category.LOW_RISK
    ]
    result: dict[str, Any] = {
        "obfuscation": obfuscation_suite(corpus.engine(holdout), harmful, limit)
    }
    say(f"obfuscation: {result['obfuscation']}")
    result["leave_one_source_out"], _ = leave_one_source_out(corpus, False, rows)
    result["leave_one_source_out_summary"] = loso_summary(result["leave_one_source_out"])
    say(summary_table(result))
    say(f"({time.monotonic() - started:.0f} s)")
    return result


def evaluate_shared(settings: Settings, shared: Path, curve: bool, limit: int) -> dict[str, Any]:
    """Held-out split, leave-one-source-out, obfuscation and (optionally) few-shot curves."""
    started = time.monotonic()
    corpus = load_corpus(settings, shared)
    holdout = crossval.stratified_holdout(
        corpus.data, corpus.trainable, augmentation=corpus.augmentation
    )
    engine = corpus.engine(holdout)
    test = corpus.data.select(holdout.test)
    predicted = crossval.categories(engine, crossval.analyse_all(engine, test.texts))
    result: dict[str, Any] = {
        "model": corpus.lookup.name,
        "scoring": corpus.scoring.model_dump(mode="json"),
        "holdout": report(test, predicted, peer_predictions(test.texts)),
    }
    say(format_table("held-out split (20%, stratified, seed 0)", result["holdout"]))
    harmful = [
        t for t, c in zip(test.texts, test.labels, strict=True) if c is not Category.LOW_RISK
    ]
    result["obfuscation"] = obfuscation_suite(engine, harmful, limit)
    say(f"obfuscation: {result['obfuscation']}")
    loso, curves = leave_one_source_out(corpus, curve)
    result["leave_one_source_out"] = loso
    result["leave_one_source_out_summary"] = loso_summary(loso)
    if curve:
        result["adapt_curve"] = curves
    result["functional"] = functional_suite(load_engine(settings))
    result["targets"] = targets.check(result)
    say(summary_table(result))
    say(f"({time.monotonic() - started:.0f} s)")
    return result


def summary_table(result: dict[str, Any]) -> str:
    """Leave-one-source-out per source next to the peer, the curves, and the targets."""
    curves = result.get("adapt_curve", {})
    header = f"{'source left out':<20} {'n':>6} {'ours':>6} {'peer':>6} {'flagged':>8}"
    if curves:
        header += "   macro-F1 at K=" + "/".join(str(k) for k in fewshot.CURVE_KS)
    lines = [header]
    for name, r in result["leave_one_source_out"].items():
        line = (
            f"{name:<20} {r['n']:>6} {r['binary']['macro_f1']:>6.3f} "
            f"{r['peer']['binary']['macro_f1']:>6.3f} {r['flagged']:>8.3f}"
        )
        if name in curves:
            line += "   " + " ".join(
                f"{curves[name][str(k)]['binary']['macro_f1']:.3f}" for k in fewshot.CURVE_KS
            )
        lines.append(line)
    summary = result["leave_one_source_out_summary"]
    lines.append(
        f"{'mean':<20} {'':>6} {summary['mean_macro_f1']:>6.3f} "
        f"{summary['peer_mean_macro_f1']:>6.3f}   worst {summary['worst_macro_f1']:.3f}"
        f" ({summary['worst_source']})"
    )
    lines.append("per category over the left-out sources that carry it:")
    for name, row in summary["per_category"].items():
        lines.append(
            f"  {name:<20} P {row['precision']:.3f}  R {row['recall']:.3f}  F1 {row['f1']:.3f}"
            f"  n {row['support']}  ({row['sources']} sources)"
        )
    if "targets" in result:
        lines.append(targets_table(result["targets"]))
    return "\n".join(lines)


def targets_table(checks: dict[str, list[Any]]) -> str:
    """Each target with its value and whether it is met."""
    lines = ["targets:"]
    for name, (value, met) in checks.items():
        lines.append(f"  {'met ' if met else 'MISS'}  {name:<45} {value}")
    return "\n".join(lines)


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
    parser.add_argument(
        "--adapt", type=int, default=0, help="with --data: add K examples per label first"
    )
    parser.add_argument(
        "--adapt-curve", action="store_true", help="few-shot curves per source left out"
    )
    parser.add_argument("--obfuscation-examples", type=int, default=300)
    parser.add_argument("--sources", help="comma-separated sources for few-shot curves only")
    parser.add_argument(
        "--rows", type=int, default=2000, help="with --sources or --loso-only: rows per source"
    )
    parser.add_argument(
        "--functional-only", action="store_true", help="only the functional suite (minutes)"
    )
    parser.add_argument(
        "--index-types", help="with --sources: comma-separated REFERENCE_INDEX types to compare"
    )
    parser.add_argument(
        "--loso-only",
        action="store_true",
        help="only leave-one-source-out (--rows tested per source) and obfuscation",
    )
    options = parser.parse_args()
    settings = Settings()
    configure_logging("WARNING")
    if options.data:
        evaluate_file(settings, options.data, options.report, options.adapt)
        return
    if options.index_types and options.sources:
        kinds = options.index_types.split(",")
        compared = compare_index_types(
            settings, options.shared, options.sources.split(","), options.rows, kinds
        )
        write(options.report or settings.var_dir / "eval" / "index_types.json", compared)
        return
    if options.sources:
        found = evaluate_sources(settings, options.shared, options.sources.split(","), options.rows)
        write(options.report or settings.var_dir / "eval" / "fewshot.json", found)
        return
    if options.functional_only:
        suite = functional_suite(load_engine(settings))
        checks = targets.check_functional(suite)
        say(targets_table(checks))
        write(
            options.report or settings.var_dir / "eval" / "functional.json",
            {"functional": suite, "targets": checks},
        )
        return
    if options.loso_only:
        found = evaluate_loso(settings, options.shared, options.rows, options.obfuscation_examples)
        write(options.report or settings.var_dir / "eval" / "loso.json", found)
        return
    result = evaluate_shared(
        settings, options.shared, options.adapt_curve, options.obfuscation_examples
    )
    write(options.report or settings.var_dir / "eval" / "report.json", result)


def write(path: Path, result: dict[str, Any]) -> None:
    """Write a report as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    say(f"written to {path}")


if __name__ == "__main__":
    main()
