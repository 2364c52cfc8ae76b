"""The screening engine end to end on the real packaged model and a small reference set."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.models import Category, Decision, Platform
from core.screening.engine import ScreeningEngine, ScreenItem, load_engine
from core.screening.reference.dataset import ReferenceSet
from core.screening.rules import DEFAULT_RULES_PATH
from core.screening.scoring.bundle import ModelBundle
from core.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rules_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the shipped rules (and word lists) that a test may edit."""
    target = tmp_path_factory.mktemp("rules") / "data"
    shutil.copytree(DEFAULT_RULES_PATH.parent, target, ignore=shutil.ignore_patterns("reference"))
    return target / "rules.toml"


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory,
    small_reference: Path,
    model_dir: Path,
    rules_copy: Path,
) -> Settings:
    """Settings of an engine on the small reference set, with a fast rules reload."""
    return Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        model_dir=model_dir,
        reference_path=small_reference,
        rules_path=rules_copy,
        rules_reload_s=0.0,
        embed_device="cpu",
    )


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[ScreeningEngine]:
    """The engine without Redis (no embedding cache, no cross-event signal)."""
    yield load_engine(settings)


def test_every_item_gets_a_complete_decision_in_order(engine: ScreeningEngine) -> None:
    items = [
        ScreenItem(
            text="thanks for the help with my homework yesterday", event_id="a", platform="slack"
        ),
        ScreenItem(
            text="I am going to find you and kill you, you worthless piece of shit", event_id="b"
        ),
        ScreenItem(
            text="WIN a FREE iPhone!!! click bit.ly/win-now and call +1 555 0100", event_id="c"
        ),
    ]
    decisions = engine.screen(items)
    assert [d.event_id for d in decisions] == ["a", "b", "c"]
    for decision in decisions:
        Decision.model_validate(decision.model_dump())  # every field valid
        assert 0 <= decision.risk_score <= 1
        assert set(decision.category_scores) == set(Category)
        assert decision.route == ("high" if decision.category is not Category.LOW_RISK else "low")
        assert decision.model == engine.embedder.name
        assert decision.version == engine.version
        assert 0 < len(decision.similar) <= engine.scoring.shown_neighbours
    benign, threat, spam = decisions
    assert benign.platform is Platform.SLACK
    assert benign.route == "low" and not benign.flags
    assert threat.route == "high"
    assert threat.category in {Category.VIOLENCE, Category.TARGETED_HARASSMENT, Category.TOXIC}
    assert any(flag.id.startswith("threat") for flag in threat.flags)
    assert any(
        "kill you" in evidence.lower() for flag in threat.flags for evidence in flag.evidence
    )
    assert spam.route == "high" and spam.category is Category.SPAM


def test_obfuscated_threat_keeps_its_verdict(engine: ScreeningEngine) -> None:
    plain, disguised = engine.screen(
        [ScreenItem(text="i will kill you"), ScreenItem(text="i w\u200bill k1ll y0u")]
    )
    assert plain.route == disguised.route == "high"


def test_a_texts_decision_does_not_depend_on_the_batch_it_is_in(
    engine: ScreeningEngine,
) -> None:
    words = [
        "you",
        "are",
        "a",
        "worthless",
        "idiot",
        "and",
        "i",
        "will",
        "find",
        "you,",
        "thanks",
        "for",
        "the",
        "lovely",
        "dinner",
    ]
    texts = [" ".join(words[i % 7 : i % 7 + 1 + (i * 5) % 17] * (1 + i % 9)) for i in range(100)]
    in_batch = engine.screen([ScreenItem(text=t) for t in texts])
    for index in (0, 13, 57, 99):
        [alone] = engine.screen([ScreenItem(text=texts[index])])
        assert alone.category == in_batch[index].category
        assert alone.route == in_batch[index].route
        assert alone.risk_score == pytest.approx(in_batch[index].risk_score, abs=1e-5)


def test_added_example_is_a_neighbour_at_once(engine: ScreeningEngine) -> None:
    text = "the quarterly llama census begins at dawn near the old mill"
    version = engine.version
    engine.add_examples([text], [Category.SPAM], ["runtime:1"])
    [decision] = engine.screen([ScreenItem(text=text)])
    assert decision.similar[0].id == "runtime:1"
    assert decision.similar[0].label is Category.SPAM
    assert engine.version != version


def test_a_runtime_example_moves_a_near_identical_text_and_is_shown(
    engine: ScreeningEngine,
) -> None:
    example = "grab your limited seat in the crimson falcon guild tonight"
    probe = "grab your limited seat in the crimson falcon guild tonight!!"
    [before] = engine.screen([ScreenItem(text=probe, tenant="falcon")])
    assert before.route == "low"
    engine.add_examples([example], [Category.SPAM], ["review:falcon:1"], tenant="falcon")
    [after] = engine.screen([ScreenItem(text=probe, tenant="falcon")])
    assert after.route == "high" and after.category is Category.SPAM
    assert after.similar[0].id == "review:falcon:1"
    assert after.signals["examples"] > 0


def test_a_tenants_example_does_not_change_another_tenants_decisions(
    engine: ScreeningEngine,
) -> None:
    text = "meet the violet otter collective by the harbour at nine"
    engine.add_examples([text], [Category.TOXIC], ["review:otter:1"], tenant="otter")
    mine, theirs, everyone = engine.screen(
        [
            ScreenItem(text=text, tenant="otter"),
            ScreenItem(text=text, tenant="heron"),
            ScreenItem(text=text),
        ]
    )
    assert mine.route == "high"
    assert theirs.route == everyone.route == "low"
    assert theirs.risk_score == everyone.risk_score
    assert theirs.signals["examples"] == 0.0
    assert all(n.id != "review:otter:1" for n in theirs.similar + everyone.similar)


def test_the_receipt_names_each_signal_and_they_add_up_to_the_risk(
    engine: ScreeningEngine,
) -> None:
    [decision] = engine.screen([ScreenItem(text="you are a worthless idiot, shut up")])
    assert set(decision.signals) == {
        "rules", "head", "neighbours", "profanity_model", "examples", "bias"
    }  # fmt: skip
    log_odds = sum(decision.signals.values())
    assert 1 / (1 + math.exp(-log_odds)) == pytest.approx(decision.risk_score, abs=2e-3)
    assert decision.signals["rules"] > 0  # the insult rules fired


def test_examples_of_mismatched_lengths_are_refused(engine: ScreeningEngine) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        engine.add_examples(["a", "b"], [Category.SPAM], ["x", "y"])


def test_editing_the_rules_file_changes_decisions_without_a_restart(
    engine: ScreeningEngine, rules_copy: Path
) -> None:
    text = "the word flibbertigibbet is on my mind"
    [before] = engine.screen([ScreenItem(text=text)])
    assert not any(flag.id == "test_word" for flag in before.flags)
    original = rules_copy.read_text()
    try:
        rules_copy.write_text(
            original
            + '\n[[rules]]\nid = "test_word"\ncategory = "SPAM"\nweight = 0.9\nkind = "wordlist"\n'
            'words = ["flibbertigibbet"]\n'
        )
        os.utime(rules_copy, (time.time() + 5, time.time() + 5))
        [after] = engine.screen([ScreenItem(text=text)])
        assert any(flag.id == "test_word" for flag in after.flags)
        assert after.version != before.version
    finally:
        rules_copy.write_text(original)
        os.utime(rules_copy, (time.time() + 10, time.time() + 10))


@pytest.fixture()
def engine_on_redis(settings: Settings, redis_url: str) -> ScreeningEngine:
    """The engine with Redis: its embedding cache and the cross-event signal."""
    client = redis.Redis.from_url(redis_url)
    return load_engine(settings.model_copy(update={"redis_url": redis_url}), client)


def _repeated(decisions: list[Decision]) -> list[bool]:
    """Whether the cross-sender signal fired on each decision."""
    return ["repeat_across_senders" in {flag.id for flag in d.flags} for d in decisions]


def test_with_redis_the_cache_is_used_and_repeats_across_senders_are_flagged(
    engine_on_redis: ScreeningEngine, redis_client: redis.Redis
) -> None:
    engine = engine_on_redis
    text = "join my channel for daily crypto signals, link in bio"
    items = [ScreenItem(text=text, platform="telegram", user_id=f"user{i}") for i in range(6)]
    assert _repeated(engine.screen(items)) == [False, False, False, False, True, True]
    cache = engine.embedder.cache  # type: ignore[attr-defined]
    assert cache.misses >= 1
    hits_before = cache.hits
    engine.screen([ScreenItem(text=text)])
    assert cache.hits > hits_before
    assert redis_client.keys("events:emb:*")


def test_one_tenants_senders_never_count_towards_another_tenants_repeats(
    engine_on_redis: ScreeningEngine,
) -> None:
    text = "limited offer, my friends: the best deal in town is waiting for you"
    beta = [
        ScreenItem(text=text, platform="discord", user_id=f"b{i}", tenant="beta") for i in range(5)
    ]
    assert _repeated(engine_on_redis.screen(beta)) == [False, False, False, False, True]
    alpha = ScreenItem(text=text, platform="discord", user_id="a0", tenant="alpha")
    assert _repeated(engine_on_redis.screen([alpha])) == [False]


def test_texts_screened_on_request_read_the_repeat_count_but_add_no_sender(
    engine_on_redis: ScreeningEngine,
) -> None:
    text = "everyone should see this wonderful new shop that opened downtown"
    asked = [
        ScreenItem(text=text, platform="slack", user_id=f"s{i}", tenant="alpha", counts=False)
        for i in range(6)
    ]
    assert _repeated(engine_on_redis.screen(asked)) == [False] * 6
    events = [
        ScreenItem(text=text, platform="slack", user_id=f"e{i}", tenant="alpha") for i in range(5)
    ]
    assert _repeated(engine_on_redis.screen(events)) == [False, False, False, False, True]
    assert _repeated(engine_on_redis.screen(asked[:1])) == [True]  # what an event would get now


def test_the_index_holds_the_reference_set_and_the_models_examples(
    engine: ScreeningEngine, settings: Settings
) -> None:
    assert settings.reference_path is not None
    reference = ReferenceSet.load(settings.reference_path)
    examples = ModelBundle.load().examples
    assert examples is not None
    assert len(engine.index) == len(reference) + len(examples)
    assert engine.index.ids[len(reference) :] == examples.ids
