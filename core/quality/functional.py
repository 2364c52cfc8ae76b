"""The functional suite: templates x target lists, one functionality at a time, split by template.

Each functionality of data/functional.toml (hateful contempt, threats, insults, sexual remarks,
scams, their disguised spellings, and the benign contrasts: counter-speech, negation, identity
mentions, reclaimed words, profanity aimed at nobody, idioms, clinical talk, ordinary links)
has `train` templates, which may make training examples, and `test` templates, the only ones the
suite reports on. A case is right when the engine calls it harmful exactly when its label is not
LOW_RISK; the category it names is reported beside that.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.models import Category
from core.quality.evaluation import Flags, LabelledTexts

DEFAULT_SUITE_PATH = Path(__file__).parent / "data" / "functional.toml"
SPLITS = ("train", "test")
SOURCE = "functional"

_SLOT = re.compile(r"\{([a-z_]+)\}")
_WORD = re.compile(r"[A-Za-z]{4,}")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})


@dataclass(frozen=True)
class Functionality:
    """One thing the engine must get right: a label and its templates of each split."""

    name: str
    label: Category
    about: str
    templates: dict[str, tuple[str, ...]]
    rewrite_of: str | None = None


@dataclass(frozen=True)
class Case:
    """One generated text, with the functionality, template and split it comes from."""

    functionality: str
    label: Category
    split: str
    template: str
    text: str


def _longest_words(text: str, count: int = 2) -> list[re.Match[str]]:
    """The `count` longest words of four letters or more, in text order."""
    words = sorted(_WORD.finditer(text), key=lambda m: (-len(m.group()), m.start()))[:count]
    return sorted(words, key=lambda m: m.start())


def _respell(text: str, change: Callable[[str], str]) -> str:
    """Apply `change` to the two longest words of a text."""
    out, last = [], 0
    for match in _longest_words(text):
        out += [text[last : match.start()], change(match.group())]
        last = match.end()
    return "".join([*out, text[last:]])


def _drop(word: str) -> str:
    """Drop the middle letter (parasites -> paraites)."""
    middle = len(word) // 2
    return word[:middle] + word[middle + 1 :]


def _swap(word: str) -> str:
    """Swap the two middle letters, or the nearest two that differ (parasites -> parastites)."""
    middle = len(word) // 2
    for i in sorted(range(1, len(word)), key=lambda i: abs(i - middle)):
        if word[i - 1] != word[i]:
            return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word


DISGUISES: tuple[Callable[[str], str], ...] = (
    lambda text: _respell(text, _drop),
    lambda text: _respell(text, _swap),
    lambda text: text.replace(" ", ""),
    lambda text: _respell(text, lambda w: w.lower().translate(_LEET)),
)


def disguise(text: str, number: int) -> str:
    """The `number`-th disguise of a text (they take turns): dropped, swapped, unspaced, digits."""
    return DISGUISES[number % len(DISGUISES)](text)


class Suite:
    """The functionalities and the target lists their templates draw on."""

    def __init__(self, functionalities: Sequence[Functionality], targets: dict[str, list[str]]):
        self.functionalities = list(functionalities)
        self.targets = targets
        self._by_name = {f.name: f for f in self.functionalities}
        for functionality in self.functionalities:
            for template in self._templates(functionality, "train") + self._templates(
                functionality, "test"
            ):
                for slot in _SLOT.findall(template):
                    if not targets.get(slot):
                        raise ConfigError(f"{functionality.name}: no target list {slot!r}")

    @classmethod
    def load(cls, path: Path = DEFAULT_SUITE_PATH) -> Suite:
        """Read and check a suite file."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            functionalities = [
                Functionality(
                    name=item["name"],
                    label=Category(item["label"]),
                    about=item["about"],
                    templates={split: tuple(item.get(split, ())) for split in SPLITS},
                    rewrite_of=item.get("rewrite_of"),
                )
                for item in data["functionality"]
            ]
            targets = {name: list(values) for name, values in data["targets"].items()}
        except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"bad functional suite {path}: {exc}") from exc
        return cls(functionalities, targets)

    def _templates(self, functionality: Functionality, split: str) -> tuple[str, ...]:
        """A functionality's templates of a split (those of the one it disguises, if any)."""
        if functionality.rewrite_of is None:
            return functionality.templates[split]
        source = self._by_name.get(functionality.rewrite_of)
        if source is None:
            raise ConfigError(f"{functionality.name}: no functionality {functionality.rewrite_of}")
        return self._templates(source, split)

    def _fill(self, template: str) -> list[str]:
        """One text per entry of the first slot's list; further slots cycle through theirs."""
        slots = list(dict.fromkeys(_SLOT.findall(template)))
        if not slots:
            return [template]
        first = self.targets[slots[0]]
        texts = []
        for row, value in enumerate(first):
            filled = template.replace("{" + slots[0] + "}", value)
            for step, slot in enumerate(slots[1:], start=1):
                values = self.targets[slot]
                filled = filled.replace("{" + slot + "}", values[(row + 7 * step) % len(values)])
            texts.append(filled)
        return texts

    def cases(self, split: str) -> list[Case]:
        """Every case of a split, functionality by functionality."""
        out = []
        for functionality in self.functionalities:
            number = 0
            for template in self._templates(functionality, split):
                for filled in self._fill(template):
                    text = filled if functionality.rewrite_of is None else disguise(filled, number)
                    out.append(Case(functionality.name, functionality.label, split, template, text))
                    number += 1
        return out

    def training_frames(self) -> LabelledTexts:
        """The cases of the train templates as labelled texts (source `functional`)."""
        cases = self.cases("train")
        return LabelledTexts(
            [c.text for c in cases], [c.label for c in cases], [SOURCE] * len(cases)
        )


def measure(
    suite: Suite,
    categorise: Callable[[list[str]], list[Category]],
    peer: Callable[[list[str]], Flags] | None = None,
) -> dict[str, Any]:
    """Per-functionality accuracy on the test templates, the engine's next to the peer's."""
    cases = suite.cases("test")
    texts = [c.text for c in cases]
    named = categorise(texts)
    flagged = np.array([c is not Category.LOW_RISK for c in named])
    harmful = np.array([c.label is not Category.LOW_RISK for c in cases])
    peer_flags = peer(texts) if peer is not None else None
    rows: dict[str, Any] = {}
    for functionality in suite.functionalities:
        mine = np.array([c.functionality == functionality.name for c in cases])
        right = flagged[mine] == harmful[mine]
        named_right = [named[i] is cases[i].label for i in np.flatnonzero(mine)]
        rows[functionality.name] = {
            "label": functionality.label.value,
            "n": int(mine.sum()),
            "accuracy": round(float(np.mean(right)), 4),
            "category_accuracy": round(float(np.mean(named_right)), 4),
            "peer_accuracy": None
            if peer_flags is None
            else round(float(np.mean(peer_flags[mine] == harmful[mine])), 4),
        }
    accuracies = {name: row["accuracy"] for name, row in rows.items()}
    worst = min(accuracies, key=lambda name: accuracies[name])
    peers = [row["peer_accuracy"] for row in rows.values() if row["peer_accuracy"] is not None]
    return {
        "split": "test",
        "cases": len(cases),
        "functionalities": rows,
        "mean": round(float(np.mean(list(accuracies.values()))), 4),
        "worst": accuracies[worst],
        "worst_functionality": worst,
        "peer_mean": round(float(np.mean(peers)), 4) if peers else None,
    }


def format_table(result: dict[str, Any]) -> str:
    """The suite's result as aligned text: one row per functionality, then mean and worst."""
    lines = [
        f"functional suite, test templates only  (n={result['cases']})",
        f"  {'functionality':<28} {'label':<20} {'n':>4} {'ours':>6} {'category':>9} {'peer':>6}",
    ]
    for name, row in result["functionalities"].items():
        peer = "-" if row["peer_accuracy"] is None else f"{row['peer_accuracy']:.3f}"
        lines.append(
            f"  {name:<28} {row['label']:<20} {row['n']:>4} {row['accuracy']:>6.3f}"
            f" {row['category_accuracy']:>9.3f} {peer:>6}"
        )
    peer_mean = "-" if result["peer_mean"] is None else f"{result['peer_mean']:.3f}"
    lines.append(f"  {'mean':<28} {'':<20} {'':>4} {result['mean']:>6.3f} {'':>9} {peer_mean:>6}")
    lines.append(
        f"  {'worst':<28} {result['worst_functionality']:<20} {'':>4} {result['worst']:>6.3f}"
    )
    return "\n".join(lines)
