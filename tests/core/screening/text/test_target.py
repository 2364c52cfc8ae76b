"""The target cues: whom a text speaks to (addressee, mention, command) and of (identity group,
"them", sex), each a 0/1 column in TARGET_FEATURES order."""

from __future__ import annotations

import numpy as np
import pytest

from core.screening.text.target import TARGET_FEATURES, target_features


def cue(name: str, text: str) -> float:
    """One cue of one text."""
    return float(target_features([text])[0, TARGET_FEATURES.index(name)])


@pytest.mark.parametrize(
    "text", ["you are a clown", "ur so slow", "nobody asked u", "y'all lost", "hey, over here"]
)
def test_second_person_pronouns_chat_spellings_and_openers_mark_an_addressee(text: str) -> None:
    assert cue("addressee", text) == 1.0


@pytest.mark.parametrize("text", ["he is a clown", "the results are in", "ok then"])
def test_third_person_or_no_person_is_no_addressee(text: str) -> None:
    assert cue("addressee", text) == 0.0


@pytest.mark.parametrize("text", ["@USER what a take", "thanks @sam_92!", "[USER] is wrong"])
def test_a_handle_or_a_user_placeholder_is_a_mention(text: str) -> None:
    assert cue("mention", text) == 1.0


def test_an_email_address_is_not_a_mention() -> None:
    assert cue("mention", "write to help@example.com") == 0.0


@pytest.mark.parametrize(
    "text", ["shut up", "@USER just go away", "nice try. get lost", "please uninstall"]
)
def test_an_order_opening_the_text_or_a_sentence_is_a_command(text: str) -> None:
    assert cue("command", text) == 1.0


def test_an_order_verb_inside_a_sentence_is_no_command() -> None:
    assert cue("command", "I want to go home and get some sleep") == 0.0


@pytest.mark.parametrize(
    "text", ["immigrants again", "a muslim neighbour", "Jewish history", "African American art"]
)
def test_a_protected_group_by_plural_singular_adjective_or_phrase_is_an_identity_group(
    text: str,
) -> None:
    assert cue("identity_group", text) == 1.0


def test_a_word_containing_a_group_term_is_no_identity_group() -> None:
    assert cue("identity_group", "a transaction fee at the bank") == 0.0


@pytest.mark.parametrize(
    "text", ["they ruin everything", "send them back", "these people again", "those clowns"]
)
def test_talk_of_them_or_of_these_people_is_group_talk(text: str) -> None:
    assert cue("group_talk", text) == 1.0


@pytest.mark.parametrize("text", ["send nudes", "wanna have sex", "in bed tonight"])
def test_ordinary_sexual_words_are_a_sexual_topic(text: str) -> None:
    assert cue("sexual_topic", text) == 1.0


def test_a_text_without_any_cue_has_every_column_zero() -> None:
    assert not target_features(["The weather is lovely today."]).any()


def test_the_features_are_one_zero_or_one_row_per_text_in_column_order() -> None:
    rows = target_features(["@USER you people make me sick", "", "hello"])
    assert rows.shape == (3, len(TARGET_FEATURES))
    assert set(np.unique(rows).tolist()) <= {0.0, 1.0}
    assert rows[0].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("text", ["i will kill you", "they should hang", "go die"])
def test_a_word_of_violence_is_a_violence_word(text: str) -> None:
    assert cue("violence_word", text) == 1.0


def test_skill_and_diet_are_no_violence_words() -> None:
    assert cue("violence_word", "a new skill and a diet plan") == 0.0
