"""`scripts/curate_reference.py`: what the shipped reference set's text looks like."""

from __future__ import annotations

import re

from core.screening.reference.dataset import DEFAULT_REFERENCE_PATH, ReferenceSet
from scripts.curate_reference import CLEANERS, SHIPPED, undo_sbic_tokenisation

SBIC_ARTEFACTS = re.compile(r"<(number|repeat|allcaps|elong|url|user|smile)>|&#?\w+;| n't\b")


def test_sbic_placeholders_become_what_people_type() -> None:
    text = "what 's pink , <number> inches long ? <repeat> pms <allcaps> ! <repeat> <smile>"
    assert undo_sbic_tokenisation(text) == "what's pink, 3 inches long??? PMS!!! :)"
    assert undo_sbic_tokenisation("oh gooodno <allcaps> <elong> .") == "oh GOOODNO."


def test_sbic_split_contractions_and_spaced_punctuation_are_joined() -> None:
    text = "they ca n't hear them , i 'm sure . David Duke 's name wo n't"
    assert undo_sbic_tokenisation(text) == "they can't hear them, i'm sure. David Duke's name won't"


def test_sbic_html_entities_are_decoded_even_when_escaped_twice() -> None:
    text = "fr &#128514;&#128514; &amp; more &amp;#x200B; \\*cough\\*"
    assert undo_sbic_tokenisation(text) == "fr 😂😂 & more *cough*"


def test_only_sbic_is_cleaned_and_every_cleaned_source_ships() -> None:
    assert set(CLEANERS) == {"sbic_dev"}
    assert set(CLEANERS) <= set(SHIPPED)


def test_the_shipped_sbic_rows_carry_no_corpus_artefacts() -> None:
    reference = ReferenceSet.load(DEFAULT_REFERENCE_PATH)
    sbic = [t for t, s in zip(reference.texts, reference.sources, strict=True) if s == "sbic_dev"]
    assert len(sbic) > 4000
    assert [t for t in sbic if SBIC_ARTEFACTS.search(t)] == []
