"""The trained weights that ship (ridge head, blender, profanity model) and their card.

`make model` writes `head.npz`, `blender.npz`, `profanity.npz` (alt-profanity-check exported to
plain arrays), `examples.csv.gz` (the examples written for training beyond the reference set,
which the engine adds to its reference index) and `card.json` into `core/screening/data/model`;
the card names the data (reference digest, rows per source and label), the seed, the recipe, the
out-of-fold metrics and the sha256 of each weight file. Loading checks those digests, so weights
that do not match their card are refused rather than used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.screening.reference.dataset import ReferenceSet
from core.screening.scoring.blender import Blender
from core.screening.scoring.head import LinearHead
from core.screening.scoring.profanity import ProfanityModel

DEFAULT_MODEL_PATH = Path(__file__).parents[1] / "data" / "model"
HEAD_FILE = "head.npz"
BLENDER_FILE = "blender.npz"
PROFANITY_FILE = "profanity.npz"
EXAMPLES_FILE = "examples.csv.gz"
CARD_FILE = "card.json"
WEIGHT_FILES = (HEAD_FILE, BLENDER_FILE, PROFANITY_FILE)


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ModelBundle:
    """A head, the blender trained with it and the profanity model it blends, with their card."""

    head: LinearHead
    blender: Blender
    profanity: ProfanityModel
    card: dict[str, Any]
    examples: ReferenceSet | None = None

    @property
    def version(self) -> str:
        """A short name of these weights: the start of the blender's sha256."""
        return str(self.card.get("files", {}).get(BLENDER_FILE, ""))[:12]

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the weights and a card that records their sha256; return the card."""
        directory.mkdir(parents=True, exist_ok=True)
        self.head.save(directory / HEAD_FILE)
        self.blender.save(directory / BLENDER_FILE)
        self.profanity.save(directory / PROFANITY_FILE)
        names = list(WEIGHT_FILES)
        if self.examples is not None:
            self.examples.save(directory / EXAMPLES_FILE)
            names.append(EXAMPLES_FILE)
        card = dict(self.card)
        card["files"] = {name: sha256(directory / name) for name in names}
        (directory / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        return card

    @classmethod
    def load(cls, directory: Path = DEFAULT_MODEL_PATH) -> ModelBundle:
        """Read the weights, refusing files whose sha256 differs from the card's."""
        try:
            card = json.loads((directory / CARD_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the model card in {directory}: {exc}") from exc
        examples = EXAMPLES_FILE in card.get("files", {})
        for name in [*WEIGHT_FILES, *([EXAMPLES_FILE] if examples else [])]:
            path = directory / name
            expected = card.get("files", {}).get(name)
            if not path.exists() or sha256(path) != expected:
                raise ConfigError(f"{path} does not match its card; run `make model`")
        return cls(
            LinearHead.load(directory / HEAD_FILE),
            Blender.load(directory / BLENDER_FILE),
            ProfanityModel.load(directory / PROFANITY_FILE),
            card,
            ReferenceSet.load(directory / EXAMPLES_FILE) if examples else None,
        )
