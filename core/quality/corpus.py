"""The evaluation's corpus: every shared source and the suite's training frames, prepared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.quality import crossval
from core.quality.evaluation import LabelledTexts
from core.quality.functional import SOURCE
from core.screening.embedding import Embedder
from core.screening.engine import ScreeningEngine
from core.screening.rules import RuleFile
from core.screening.scoring.config import ScoringConfig
from core.screening.scoring.profanity import ProfanityModel
from core.training.recipe import TrainingData


@dataclass
class Corpus:
    """Labelled texts embedded, ruled and scored once, and what every fold's engine needs."""

    data: LabelledTexts
    prepared: TrainingData
    lookup: crossval.LookupEmbedder
    rules: RuleFile
    scoring: ScoringConfig
    profanity: ProfanityModel
    trainable: set[str]
    augmentation: frozenset[str]

    @classmethod
    def load(
        cls,
        data: LabelledTexts,
        trainable: set[str],
        *,
        embedder: Embedder,
        rules: RuleFile,
        scoring: ScoringConfig,
        profanity: ProfanityModel,
        cache_dir: Path,
    ) -> Corpus:
        """Embed (cached under `cache_dir`) the texts and the suite's training frames, and run
        the rules and the profanity model over them; the frames are an augmentation source."""
        vectors = crossval.cached_vectors(embedder, data, cache_dir)
        data, vectors = crossval.with_training_frames(embedder, data, vectors, cache_dir)
        augmentation = frozenset({SOURCE})
        return cls(
            data,
            crossval.prepare(data, vectors, rules, profanity, augmentation),
            crossval.LookupEmbedder(embedder, data.texts, vectors),
            rules,
            scoring,
            profanity,
            trainable,
            augmentation,
        )

    def engine(self, fold: crossval.Fold) -> ScreeningEngine:
        """The engine trained on a fold's training rows, as `make model` trains."""
        return crossval.fold_engine(
            fold,
            self.data,
            self.prepared,
            embedder=self.lookup,
            profanity=self.profanity,
            rules=self.rules,
            scoring=self.scoring,
        )
