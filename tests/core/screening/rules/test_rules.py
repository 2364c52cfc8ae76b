"""Claims about core.screening.rules: each shipped rule, loading, hot reload, repeat counts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from core.errors import ConfigError
from core.models import Category
from core.screening.rules import (
    DEFAULT_RULES_PATH,
    MAX_EVIDENCE,
    MAX_EVIDENCE_CHARS,
    RedisRepeatCounter,
    RuleFile,
    RuleHit,
    RuleSet,
)
from core.screening.text.normalization import normalize


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    """The shipped rule set."""
    return RuleSet.load(DEFAULT_RULES_PATH)


def fired(rules: RuleSet, text: str, repeat_count: int = 0) -> dict[str, RuleHit]:
    """Normalise and evaluate a text; return the hits by rule id."""
    return {hit.rule_id: hit for hit in rules.evaluate(text, normalize(text), repeat_count)}


# Each rule: texts it must fire on, and near misses it must not fire on.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "shouting": (
        ["WHY WOULD YOU EVER DO THAT TO ME", "@USER @USER STOP LYING TO EVERYONE NOW"],
        ["Why would you do that?", "@USER @USER @USER @USER ok", "I love NASA and the BBC"],
    ),
    "punct_run": (["What is wrong with you!!!", "really???", "no way?!?"], ["Really? Yes!"]),
    "char_run": (["sooooo good", "nooooo"], ["soo good", "www.example.com", "1000000"]),
    "profanity": (
        ["this is fucking great", "what a load of bullsh!t", "f*ck this", "holy shiiiit"],
        ["Scunthorpe United won", "a classic assassin", "Dickens and Moby Dick", "cocktail"],
    ),
    "profanity_mild": (["damn it", "what the hell"], ["hello there", "Hell's Kitchen is on"]),
    "insult_word": (["what an idiot", "total morons everywhere"], ["an idiom", "moronic"]),
    "targeted_insult": (
        [
            "you are an idiot",
            "you're a f*cking moron",
            "your a loser",
            "u r so stupid",
            "shut up you idiot",
            "@dave you worthless piece of shit",
            "@dave is a moron",
            "you sound like a retard",
        ],
        ["your stupid idea", "you are smart", "the idiot next door", "you know the loser?"],
    ),
    "targeted_putdown": (
        ["you suck", "shut up you idiot", "nobody asked", "get a life", "what a clown", "go away"],
        [
            "shut up and take my money",
            "I shut it down",
            "nobody asked me to dinner",
            "go away for the weekend",
            "the vacuum cleaner sucks",
        ],
    ),
    "sexual_slang": (
        ["nice tits", "show me your boobs", "he got a boner"],
        ["blue tits are birds", "a cock fight", "pussy willow", "the cockpit", "titanic"],
    ),
    "targeted_abuse": (
        ["fuck you", "stfu", "go to hell", "nobody likes you", "shut the fuck up"],
        ["fucking great", "shut up and take my money", "hell yes"],
    ),
    "threat_violence": (
        [
            "I will kill you",
            "i'm gonna shoot you",
            "gonna shoot him",
            "I'll slit your throat",
            "we are going to hunt you down and kill you",
            "I'll beat the shit out of you",
            "im gonna shoot up the school",
            "I will k i l l you",
            "I will kill you, kill the process is not what I meant",
        ],
        [
            "kill",
            "I killed it at the gym",
            "kill the process",
            "I'll shoot you a text later",
            "I'll cut you a check",
            "it's gonna kill you to wait",
            "I would never hurt you",
            "we need to kill time",
            "this game will kill you in chess",
        ],
    ),
    "threat_wish_harm": (
        [
            "you should die",
            "hope you get raped",
            "kill yourself",
            "kys",
            "go die in a fire",
            "I hope she dies",
            "they deserve to be shot",
        ],
        ["I hope you die laughing", "you should try it", "don't kill yourself working"],
    ),
    "threat_intimidation": (
        ["I know where you live", "watch your back", "you're dead"],
        ["you're dead to me", "I know where you work out"],
    ),
    "group_violence": (
        [
            "kill all the jews",
            "we should gas the muslims",
            "immigrants should be shot",
            "Gas the jews.",
        ],
        ["men who rape women", "the jews of Berlin", "kill the lights"],
    ),
    "hate_slur": (
        ["fucking faggot", "those k1kes", "a bunch of wetbacks"],
        ["a chink in the armor", "a Spic and Span cleaner", "glasses chinking"],
    ),
    "hate_slur_ambiguous": (["my nigga", "homo"], ["homo sapiens", "the Negro Leagues"]),
    "hate_dehumanising": (
        ["immigrants are vermin", "muslims are a cancer", "jews are parasites"],
        ["not all men are trash", "rats are vermin", "immigrants are welcome"],
    ),
    "hate_group_epithet": (["filthy immigrants", "dirty jews"], ["filthy rich", "dirty dishes"]),
    "sexual_explicit": (
        ["watch free porn", "send me your nudes", "huge cumshot"],
        ["magna cum laude", "sex education", "a blue tit in the garden"],
    ),
    "sexual_solicitation": (
        ["send nudes", "suck my dick", "show me your tits", "I wanna fuck you"],
        ["send the files", "show me your code"],
    ),
    "spam_url": (["see https://example.com/x", "visit example.com", "www.site.org"], ["e.g. this"]),
    "spam_shortener": (
        ["click bit.ly/3abc now", "https://tinyurl.com/xyz"],
        ["bit.ly is a service"],
    ),
    "spam_phone": (
        ["call +1 555 123 4567", "ring (555) 123-4567", "Call 0871-872-9755 now", "08712460324"],
        ["in 2019 we paid $1000", "score 3-2", "on 02/09/03"],
    ),
    "spam_prize": (
        ["You have won a cash prize", "claim your free gift", "you've been selected"],
        ["you won't believe it", "we won the game", "congratulations on the wedding"],
    ),
    "spam_investment": (
        ["I invested $1000 and got $26,000 profit", "bitcoin trading made me 5000 usd"],
        ["I paid $20 for lunch", "I invest in my friends"],
    ),
    "spam_earnings_claim": (
        ["earn $500 per day from home", "passive income guaranteed", "double your bitcoin"],
        ["I earn a living", "work from the office"],
    ),
    "spam_call_to_action": (
        ["Click here to claim", "Reply YES to join", "text WIN to 80086", "call now"],
        ["click the pen", "reply to me"],
    ),
    "spam_self_promo": (
        ["subscribe to my channel", "check out my mixtape", "link in bio", "follow me"],
        ["check out this view", "follow the rules"],
    ),
    "spam_dm_lure": (
        ["dm me for details", "contact her on whatsapp", "join t.me/cryptogroup"],
        ["text him one more time", "I met her on Monday"],
    ),
    "spam_ru_earnings": (
        ["Заработок без вложений, пиши в лс", "Ищу людей, доход от 100$ в день"],
        ["Привет, как дела?", "Хороший доход у соседа"],
    ),
    "spam_mixed_script": (
        ["Нyжны люди для yдaлённoй рaбoты", "Набираю пapтнepoв в пpoeкт"],
        ["Привет, как дела? See you at 5", "Мой email test@mail.ru", "café crème brûlée"],
    ),
    "spam_testimonial": (
        ["thanks to @trader_jane I made $5000 in a week", "i recommend @crypto_mike he is legit"],
        ["@john thanks to you we won", "thank you all for coming", "contact lenses are great"],
    ),
    "spam_first_people": (
        ["paying $500 to the first 10 people who dm me", "first (5) persons to message me win"],
        ["the first 10 minutes were boring", "first people to land on the moon"],
    ),
    "spam_recovery": (
        ["he helped me recover my stolen bitcoin", "recovery of lost funds guaranteed"],
        ["recovery from surgery takes weeks", "I got back my account name"],
    ),
    "spam_crypto_lure": (
        ["join the airdrop now", "huge rewards on our investment platform"],
        ["the air drop was cancelled", "we invest in our platform team"],
    ),
    "mention_flood": (["@a @b @c @d @e @f @g @h look"], ["@a @b thanks", "mail me at a@b.com"]),
    "emoji_flood": (["🔥" * 12, "buy 💰💰💰💰💰💰💰💰💰💰 now"], ["nice 🔥🔥", "a ✓ b"]),
}


@pytest.mark.parametrize(
    ("rule_id", "text"), [(rule_id, t) for rule_id, (pos, _) in CASES.items() for t in pos]
)
def test_rule_fires_on_positive_example(rules: RuleSet, rule_id: str, text: str) -> None:
    """The rule fires on a text that has what it looks for."""
    assert rule_id in fired(rules, text)


@pytest.mark.parametrize(
    ("rule_id", "text"), [(rule_id, t) for rule_id, (_, neg) in CASES.items() for t in neg]
)
def test_rule_stays_quiet_on_negative_example(rules: RuleSet, rule_id: str, text: str) -> None:
    """The rule does not fire on a near miss (allow lists, Scunthorpe, ordinary use)."""
    assert rule_id not in fired(rules, text)


def test_every_shipped_rule_has_examples(rules: RuleSet) -> None:
    """The cases above cover every rule in the shipped file (repeat is tested below, the
    history rules in test_history_rules)."""
    cross_event = {"repeat_across_senders", "repeat_offender", "message_burst"}
    assert set(rules.rule_ids) - cross_event == set(CASES)


def test_weights_separate_weak_style_from_threats_and_slurs(rules: RuleSet) -> None:
    """Shouting and "!!!" weigh about 0.1-0.2; a direct threat or slur about 0.8-0.95."""
    weak = fired(rules, "WHY WOULD YOU EVER DO THAT TO ME!!!")
    assert {"shouting", "punct_run"} <= set(weak)
    assert all(0.05 <= weak[r].weight <= 0.2 for r in ("shouting", "punct_run"))
    strong = fired(rules, "I will kill you, you faggot")
    assert 0.8 <= strong["threat_violence"].weight <= 0.95
    assert 0.8 <= strong["hate_slur"].weight <= 0.95
    assert strong["threat_violence"].category is Category.VIOLENCE
    assert strong["hate_slur"].category is Category.HATE_SPEECH


def test_kill_alone_is_not_a_threat(rules: RuleSet) -> None:
    """A violent word without a threat's shape fires nothing."""
    assert fired(rules, "this song kills, I killed it, kill the lights") == {}


def test_evidence_is_bounded(rules: RuleSet) -> None:
    """Evidence has at most 5 items of at most 64 characters."""
    text = " ".join(["fuck", "shit", "bitch", "cunt", "bastard", "wanker", "twat"]) + " " + "x" * 90
    text += " you are a " + "really " * 20 + "idiot"
    for hit in fired(rules, text).values():
        assert 1 <= len(hit.evidence) <= MAX_EVIDENCE
        assert all(len(item) <= MAX_EVIDENCE_CHARS for item in hit.evidence)
    assert len(fired(rules, text)["profanity"].evidence) == MAX_EVIDENCE


def test_evidence_shows_the_folded_text(rules: RuleSet) -> None:
    """A masked word is reported as the word it stands for."""
    assert fired(rules, "F*CK you")["targeted_abuse"].evidence == ("FUCK you",)


def test_repeat_rule_fires_at_the_threshold(rules: RuleSet) -> None:
    """The same content from 5 distinct senders fires; from 4 it does not."""
    text = "Join my crypto group for free signals today"
    assert "repeat_across_senders" not in fired(rules, text, repeat_count=4)
    hit = fired(rules, text, repeat_count=5)["repeat_across_senders"]
    assert hit.category is Category.SPAM
    assert hit.evidence == ("5 distinct senders",)


def test_repeat_key_ignores_case_and_spacing_and_skips_short_texts(rules: RuleSet) -> None:
    """Keys match across case and white space, differ across content, and skip short texts."""
    key = rules.repeat_key(normalize("Join my crypto group for free signals"))
    assert key is not None
    assert key == rules.repeat_key(normalize("join  my CRYPTO group for free signals "))
    assert key != rules.repeat_key(normalize("Join my knitting group for free patterns"))
    assert rules.repeat_key(normalize("hi there")) is None


def test_prefilter_never_hides_a_match(rules: RuleSet) -> None:
    """Evaluating with the pattern prefilter gives exactly what running every pattern gives."""
    texts = [t for pos, neg in CASES.values() for t in pos + neg]
    with_prefilter = [rules.evaluate(t, normalize(t)) for t in texts]
    everything = set(range(len(rules._prefilter.checks)))
    unfiltered = RuleSet.load(DEFAULT_RULES_PATH)
    unfiltered._prefilter.open_patterns = lambda text: everything  # type: ignore[method-assign]
    assert [unfiltered.evaluate(t, normalize(t)) for t in texts] == with_prefilter


# ---------------------------------------------------------------- rules files of the tests' own

MINIMAL = """
[[rules]]
id = "threat"
category = "VIOLENCE"
weight = 0.9
kind = "regex"
patterns = ['''\\bi\\s+will\\s+kill\\s+you\\b''']
allow = ["kill you in chess"]

[[rules]]
id = "bad_words"
category = "TOXIC"
weight = 0.3
kind = "wordlist"
files = ["words.txt"]
"""


def write_rules(directory: Path, text: str = MINIMAL, words: str = "badword\n") -> Path:
    """Write a rules file and its word list into a directory; return the rules path."""
    (directory / "words.txt").write_text(words, encoding="utf-8")
    path = directory / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_allow_list_suppresses_only_matches_inside_it(tmp_path: Path) -> None:
    """An allow phrase hides a match inside it, not another match elsewhere in the text."""
    rules = RuleSet.load(write_rules(tmp_path))
    assert rules.evaluate("i will kill you in chess", "i will kill you in chess") == []
    text = "i will kill you in chess. no, i will kill you"
    assert [h.rule_id for h in rules.evaluate(text, text)] == ["threat"]


def test_version_changes_with_a_word_list(tmp_path: Path) -> None:
    """The version hashes the rules file and its word lists."""
    path = write_rules(tmp_path)
    before = RuleSet.load(path)
    assert before.rule_ids == ("threat", "bad_words")
    assert before.version == RuleSet.load(path).version
    (tmp_path / "words.txt").write_text("badword\nworseword\n", encoding="utf-8")
    assert RuleSet.load(path).version != before.version


RULE = """
[[rules]]
id = "broken"
category = "TOXIC"
weight = 0.5
kind = "regex"
patterns = ["x"]
"""


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[[rules]\nid=", ["not valid TOML"]),
        ("description = 'no rules'", ["[[rules]]"]),
        ("other = 1\n" + RULE, ["unknown top-level keys", "other"]),
        (RULE.replace('kind = "regex"', 'kind = "magic"'), ["'broken'", "'kind'"]),
        (RULE.replace('"TOXIC"', '"RUDE"'), ["'broken'", "'category'"]),
        (RULE.replace('"TOXIC"', '"LOW_RISK"'), ["'broken'", "'category'"]),
        (RULE.replace("0.5", "1.5"), ["'broken'", "'weight'"]),
        (RULE.replace("weight = 0.5\n", ""), ["'broken'", "'weight'"]),
        (RULE.replace('["x"]', '["(unclosed"]'), ["'broken'", "'patterns'"]),
        (RULE.replace('["x"]', "[]"), ["'broken'", "'patterns'"]),
        (RULE.replace('["x"]', '["{{nolist}}"]'), ["'broken'", "'patterns'", "nolist"]),
        (RULE + "colour = 'red'\n", ["'broken'", "'colour'"]),
        (RULE + RULE, ["'broken'", "'id'", "earlier"]),
        (RULE.replace('"broken"', '"Bad Id"'), ["'id'"]),
        (
            RULE.replace(
                'kind = "regex"\npatterns = ["x"]', 'kind = "wordlist"\nfiles = ["nope.txt"]'
            ),
            ["'broken'", "'files[0]'", "nope.txt"],
        ),
        (RULE.replace('patterns = ["x"]', 'patterns = ["x"]\nmin_matches = 0'), ["'min_matches'"]),
        (RULE.replace("0.5", "true"), ["'broken'", "'weight'", "True"]),
        (RULE + "lists = { a = [1] }\n", ["'broken'", "'lists.a[0]'"]),
        (RULE.replace('kind = "regex"\n', ""), ["'broken'", "'kind'", "wordlist"]),
        (
            RULE.replace('kind = "regex"\npatterns = ["x"]', 'kind = "repeat_across_senders"')
            + "window_s = 600\n",
            ["'broken'", "'window_s'", "REPEAT_WINDOW_S"],
        ),
    ],
)
def test_load_rejects_a_bad_file_naming_rule_and_field(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    """A bad rules file raises ConfigError whose message names what is wrong."""
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        RuleSet.load(path)
    for name in names:
        assert name in str(error.value)


def test_load_rejects_a_missing_file(tmp_path: Path) -> None:
    """A rules file that does not exist is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError):
        RuleSet.load(tmp_path / "absent.toml")


def bump(path: Path, seconds: float = 10.0) -> None:
    """Move a file's modification time forward, as a later edit would."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + int(seconds * 1e9)))


def test_rule_file_reloads_after_the_file_changes(tmp_path: Path) -> None:
    """An edited rules file is picked up on the next check, without a restart."""
    path = write_rules(tmp_path)
    rule_file = RuleFile(path, check_interval_s=0)
    first = rule_file.current()
    assert rule_file.current() is first  # unchanged file: same object
    path.write_text(MINIMAL.replace("weight = 0.9", "weight = 0.8"), encoding="utf-8")
    bump(path)
    reloaded = rule_file.current()
    assert reloaded is not first
    assert reloaded.version != first.version
    hits = reloaded.evaluate("i will kill you", "i will kill you")
    assert [h.weight for h in hits] == [0.8]


def test_rule_file_reloads_after_a_word_list_changes(tmp_path: Path) -> None:
    """Editing a word list alone also reloads the rules."""
    path = write_rules(tmp_path)
    rule_file = RuleFile(path, check_interval_s=0)
    assert rule_file.current().evaluate("newword", "newword") == []
    words = tmp_path / "words.txt"
    words.write_text("badword\nnewword\n", encoding="utf-8")
    bump(words)
    assert [h.rule_id for h in rule_file.current().evaluate("newword", "newword")] == ["bad_words"]


def test_rule_file_keeps_the_last_good_set_on_a_broken_edit(tmp_path: Path) -> None:
    """A broken edit is logged and ignored; a later good edit is picked up."""
    path = write_rules(tmp_path)
    rule_file = RuleFile(path, check_interval_s=0)
    good = rule_file.current()
    path.write_text(MINIMAL.replace('"VIOLENCE"', '"NOT_A_CATEGORY"'), encoding="utf-8")
    bump(path)
    with capture_logs() as logs:
        assert rule_file.current() is good
        assert rule_file.current() is good  # the same broken file is not retried or re-logged
    assert [e["event"] for e in logs] == ["rules_reload_failed"]
    assert "NOT_A_CATEGORY" in logs[0]["error"]
    path.write_text(MINIMAL.replace("weight = 0.9", "weight = 0.7"), encoding="utf-8")
    bump(path, 20)
    assert rule_file.current() is not good


def test_rule_file_survives_the_file_disappearing(tmp_path: Path) -> None:
    """A deleted rules file leaves the last good set serving."""
    path = write_rules(tmp_path)
    rule_file = RuleFile(path, check_interval_s=0)
    good = rule_file.current()
    path.unlink()
    with capture_logs():
        assert rule_file.current() is good


def test_rule_file_looks_at_the_disk_at_most_once_per_interval(tmp_path: Path) -> None:
    """Within the check interval an edit is not yet seen."""
    path = write_rules(tmp_path)
    rule_file = RuleFile(path, check_interval_s=3600)
    first = rule_file.current()
    path.write_text(MINIMAL.replace("weight = 0.9", "weight = 0.8"), encoding="utf-8")
    bump(path)
    assert rule_file.current() is first


def test_rule_file_raises_when_the_first_load_fails(tmp_path: Path) -> None:
    """Without a first good set there is nothing to fall back on, so it raises."""
    path = tmp_path / "rules.toml"
    path.write_text("not = [valid", encoding="utf-8")
    with pytest.raises(ConfigError):
        RuleFile(path)


# ---------------------------------------------------------------- repeat counter on real Redis


def test_repeat_counter_counts_distinct_senders(redis_client: redis.Redis) -> None:
    """Each new sender of the same content raises the count; other content is separate."""
    counter = RedisRepeatCounter(redis_client, window_s=600)
    counts = counter.observe([("k1", f"discord:user{i}") for i in range(5)])
    assert counts == [1, 2, 3, 4, 5]
    assert counter.observe([("k2", "discord:user0")]) == [1]
    assert counter.observe([("k1", "telegram:user9")]) == [6]


def test_repeat_counter_ignores_a_repeat_from_the_same_sender(redis_client: redis.Redis) -> None:
    """The same sender sending the same content again does not count twice."""
    counter = RedisRepeatCounter(redis_client)
    assert counter.observe([("k", "slack:u1"), ("k", "slack:u1"), ("k", "slack:u2")]) == [1, 1, 2]
    assert counter.observe([("k", "slack:u1")]) == [2]
    assert counter.observe([]) == []


def test_repeat_counter_forgets_after_the_window(redis_client: redis.Redis) -> None:
    """Senders older than two windows no longer count, and keys carry a TTL."""
    now = [1_000_000.0]
    counter = RedisRepeatCounter(redis_client, prefix="t:repeat", window_s=60, clock=lambda: now[0])
    assert counter.observe([("k", "a"), ("k", "b")]) == [1, 2]
    ttls = [redis_client.ttl(key) for key in redis_client.keys("t:repeat:*")]
    assert ttls and all(0 < ttl <= 120 for ttl in ttls)
    now[0] += 60  # next window: the previous one still counts
    assert counter.observe([("k", "c")]) == [3]
    now[0] += 120  # two windows later: only the new sender
    assert counter.observe([("k", "d")]) == [1]


def test_repeat_counter_keys_expire_in_redis(redis_client: redis.Redis) -> None:
    """Redis itself drops the counters once their TTL runs out."""
    counter = RedisRepeatCounter(redis_client, prefix="x:repeat", window_s=1)
    counter.observe([("k", "a")])
    assert redis_client.keys("x:repeat:*")
    deadline = time.monotonic() + 10
    while redis_client.keys("x:repeat:*") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert redis_client.keys("x:repeat:*") == []


TRICKY_PATTERNS = [
    r"\bkill\s+(?i:YOU)",
    r"(?<![\w@])@\w+\s+idiot",
    r"^gas\s+the\s+\w+",
    r"\b(?:die|dies|died)\b",
    r"\bwon(?![\w'])",
    r"\d{3}-\d{4}",
    r"\b(?:u|you)\s+r?\s*dumb",
    r"[$£]\s?\d+",
    r"\bf[ou]o\b",
    r"\bsh(?:it|ite)?\b",
    r"(?:^|[.!?]\s+)kill\s+\w+",
    r"\bно\s+\w+",
    r"x{2,}y",
    r"\bab(?:cd)?\b(?!\s+ef)",
    r"(?:wanna|want\s+to)\s+go",
    r"\b{{group}}\s+are\s+\w+",
    r"\bdie\w*",
    r"\bsh[a-z]+",
    r"\bu\b",
]
VOCABULARY = [
    "kill",
    "you",
    "YOU",
    "@bob",
    "idiot",
    "gas",
    "the",
    "jews",
    "die",
    "dies",
    "died",
    "won",
    "won't",
    "555-1234",
    "$5",
    "£",
    "10",
    "foo",
    "fuo",
    "sh",
    "shit",
    "shite",
    "u",
    "r",
    "dumb",
    ".",
    "!",
    "но",
    "да",
    "xxy",
    "xy",
    "ab",
    "abcd",
    "ef",
    "me",
    "wanna",
    "want",
    "to",
    "go",
    "women",
    "men",
]


@pytest.fixture(scope="module")
def tricky(tmp_path_factory: pytest.TempPathFactory) -> tuple[RuleSet, RuleSet]:
    """One rule per tricky pattern, loaded twice: with the prefilter, and running everything."""
    rules = "".join(
        f"[[rules]]\nid = 'p{i}'\ncategory = 'TOXIC'\nweight = 0.5\nkind = 'regex'\n"
        f"lists = {{ group = ['women', 'men', 'the jews'] }}\npatterns = ['''{p}''']\n\n"
        for i, p in enumerate(TRICKY_PATTERNS)
    )
    path = tmp_path_factory.mktemp("tricky") / "rules.toml"
    path.write_text(rules, encoding="utf-8")
    unfiltered = RuleSet.load(path)
    everything = set(range(len(TRICKY_PATTERNS)))
    unfiltered._prefilter.open_patterns = lambda text: everything  # type: ignore[method-assign]
    return RuleSet.load(path), unfiltered


@given(st.lists(st.sampled_from(VOCABULARY), max_size=12), st.sampled_from([" ", "", ", "]))
def test_prefilter_is_exact_on_tricky_patterns(
    tricky: tuple[RuleSet, RuleSet], words: list[str], glue: str
) -> None:
    """Lookarounds, anchors, optional parts, classes, digits, inline flags, Cyrillic: the
    prefilter lets through every pattern that matches."""
    gated, unfiltered = tricky
    text = glue.join(words)
    lower = text.lower()
    assert gated.evaluate(text, lower) == unfiltered.evaluate(text, lower)
