"""`make model`: rebuild the shipped trained weights (head, blender, profanity) from shipped data.

One command, from the shipped reference set (core/screening/data/reference) with the shipped
rules and the packaged embedding model: embed the reference set (cached under var/index, as
`make index` does) and the functional suite's train-template cases (core/quality/data/
functional.toml, source `functional`, the augmentation), export alt-profanity-check to plain
arrays and run it and the rules over both, fit the blender on leave-one-source-out signals and
the head on everything, and write head.npz, blender.npz, profanity.npz and card.json (data, seed,
metrics, sha256) and examples.csv.gz (the augmentation, which the engine adds to its reference
index) to core/screening/data/model (or --out).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.logs import configure_logging
from core.quality.functional import DEFAULT_SUITE_PATH, Suite
from core.screening.engine import configured_embedder
from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from core.screening.reference.vectors import embed_reference, load_or_embed
from core.screening.rules import DEFAULT_RULES_PATH, RuleSet
from core.screening.scoring.bundle import DEFAULT_MODEL_PATH, ModelBundle
from core.screening.scoring.profanity import ProfanityModel
from core.settings import Settings
from core.training.recipe import AUGMENTATION_WEIGHT, SEED, TrainingData, train

ROOT = Path(__file__).resolve().parent.parent
RECIPE = (
    "ridge head (L2 1e-2, every source weighted equally) on the embedding; logistic blender "
    "over rules, head, neighbours (k=10) and alt-profanity-check, fit on leave-one-source-out "
    "signals of up to 1000 rows per source (source- and class-balanced); cut-off maximising the "
    "mean per-source binary macro-F1; softmax category model on the harmful rows over label sets, "
    "reading target cues (core/training/categories.py); the "
    f"functional suite's train-template cases as one more source of weight {AUGMENTATION_WEIGHT} "
    "in head, blender, category model and neighbour index (shipped as examples.csv.gz), never "
    "in the choice of the cut-off"
)


def main() -> None:
    """Train and write the bundle with its card."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--seed", type=int, default=SEED)
    options = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level)
    started = time.monotonic()
    embedder = configured_embedder(settings)
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    artifacts = load_or_embed(settings.var_dir, embedder, reference)
    rules = RuleSet.load(DEFAULT_RULES_PATH)
    profanity = ProfanityModel.from_package()
    frames = Suite.load().training_frames()
    augmentation = ReferenceSet(
        [f"functional:{i}" for i in range(len(frames))], frames.texts, frames.labels, frames.sources
    )
    combined = reference.joined(augmentation)
    vectors = np.vstack([artifacts.index.vectors(), embed_reference(embedder, augmentation)])
    augmented = np.arange(len(combined)) >= len(reference)
    data = TrainingData.prepare(combined, vectors, rules, profanity, augmented)
    model = train(data, options.seed)
    counts = Counter(
        zip(reference.sources, (label.value for label in reference.labels), strict=True)
    )
    card = {
        "trained_by": "make model (scripts/train_model.py)",
        "recipe": RECIPE,
        "seed": options.seed,
        "data": {
            "reference": str(DEFAULT_REFERENCE_PATH.relative_to(ROOT)),
            "reference_digest": artifacts.reference_digest,
            "rows": len(reference),
            "rows_per_source_and_label": {
                f"{source}/{label}": count for (source, label), count in sorted(counts.items())
            },
            "augmentation": {
                "suite": str(DEFAULT_SUITE_PATH.relative_to(ROOT)),
                "split": "train templates only (the suite reports on its test templates)",
                "source": frames.sources[0] if frames.sources else None,
                "digest": augmentation.digest(),
                "rows": len(augmentation),
                "weight": AUGMENTATION_WEIGHT,
                "rows_per_label": dict(
                    sorted(Counter(label.value for label in augmentation.labels).items())
                ),
            },
        },
        "embedding_model": embedder.name,
        "profanity_model": f"alt-profanity-check {version('alt-profanity-check')} (MIT), as arrays",
        "rules_version": rules.version,
        "metrics": model.metrics,
    }
    card = ModelBundle(model.head, model.blender, profanity, card, augmentation).save(options.out)
    sys.stdout.write(
        f"wrote {options.out}: out-of-fold mean macro-F1 "
        f"{model.metrics['out_of_fold_mean_macro_f1']}, cut-off {model.blender.threshold}, "
        f"sha256 {card['files']} ({time.monotonic() - started:.0f} s)\n"
    )


if __name__ == "__main__":
    main()
