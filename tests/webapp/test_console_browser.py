"""The console in a real browser (headless Chromium) against the real stack: sign in, the queue,
a decision, a review, the next screening of the same text; tenants; hostile content."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from core.archive import find_event, open_archive
from core.models import MAX_CONTENT_CHARS
from devtools.pipeline import wait_until
from tests.factories import API_KEY, RIVAL_KEY, ConsoleStack, event_body

pytestmark = pytest.mark.slow

TARGET = "you are such an idiot, honestly"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> \u202eevil\u202c '
XSS = HOSTILE + "w" * (MAX_CONTENT_CHARS - len(HOSTILE))  # the longest word an event may hold
REVIEWED = "review:default:discord:to-review"


def archived(stack: ConsoleStack, event_id: str) -> dict | None:  # type: ignore[type-arg]
    """The default tenant's archived event, or None."""
    engine = open_archive(stack.pipeline.settings.database_url or "")
    try:
        return find_event(engine, "default", "discord", event_id)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def system(console_stack: ConsoleStack) -> ConsoleStack:
    """The stack with a harmful text and a hostile one decided and archived."""
    results = console_stack.pipeline.post([
        event_body(event_id="to-review", content=TARGET),
        event_body(event_id="hostile", content=XSS, user_id="u-hostile"),
    ])  # fmt: skip
    assert [r["status"] for r in results] == ["accepted", "accepted"], results
    for event_id in ("to-review", "hostile"):
        wait_until(
            lambda e=event_id: archived(console_stack, e) is not None,  # type: ignore[misc]
            180,
            f"{event_id} archived\n" + console_stack.pipeline.logs(),
        )
    return console_stack


def signed_in(browser: Browser, system: ConsoleStack, key: str) -> Iterator[Page]:
    """A page of a fresh browser context, signed in to the console with `key`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(system.web.url + "/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.fill("#moderator", "Ana")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/$"))
    yield page
    assert dialogs == [], "a script of the content ran"
    context.close()


@pytest.fixture()
def moderator(browser: Browser, system: ConsoleStack) -> Iterator[Page]:
    """The default tenant's moderator, signed in."""
    yield from signed_in(browser, system, API_KEY)


@pytest.fixture()
def rival(browser: Browser, system: ConsoleStack) -> Iterator[Page]:
    """Another tenant's moderator, signed in."""
    yield from signed_in(browser, system, RIVAL_KEY)


def test_a_moderator_reviews_from_the_keyboard_and_the_next_screening_changes(
    moderator: Page, system: ConsoleStack
) -> None:
    page = moderator
    expect(page.locator('tr[data-key="discord/to-review"]')).to_be_visible()
    before = archived(system, "to-review")
    assert before is not None and before["decision"]["route"] == "high"
    for _ in range(3):  # j down the queue to the row (the hostile text may be above it)
        page.keyboard.press("j")
        if page.locator("tr.selected").get_attribute("data-key") == "discord/to-review":
            break
    page.keyboard.press("Enter")
    expect(page.locator(".content")).to_have_text(TARGET)
    expect(page.locator("svg.sigbar rect").first).to_be_visible()
    page.keyboard.press("1")  # LOW_RISK
    expect(page.locator("#status")).to_contain_text("Sent to the screening workers")
    expect(page.locator("#status")).to_contain_text("reached the screening workers", timeout=15_000)
    reviewed = archived(system, "to-review")
    assert reviewed is not None and reviewed["label"] == "LOW_RISK"

    system.pipeline.post([event_body(event_id="again", content=TARGET, user_id="someone-else")])
    wait_until(lambda: archived(system, "again") is not None, 120, system.pipeline.logs())
    page.goto(system.web.url + "/console/decisions/discord/again")
    neighbours = page.locator("table.neighbours tbody tr").first
    expect(neighbours).to_contain_text(REVIEWED)
    expect(neighbours).to_contain_text("LOW_RISK")
    again = archived(system, "again")
    assert again is not None
    assert again["decision"]["risk_score"] < before["decision"]["risk_score"]


def test_the_queue_shows_a_new_high_risk_decision_without_a_reload(
    moderator: Page, system: ConsoleStack
) -> None:
    page = moderator
    page.evaluate("document.body.dataset.loadedOnce = 'yes'")  # gone if the page reloads
    system.pipeline.post([event_body(event_id="fresh", content="I will find you and hurt you")])
    expect(page.locator('tr[data-key="discord/fresh"]')).to_be_visible(timeout=60_000)
    assert page.evaluate("document.body.dataset.loadedOnce") == "yes"


def test_hostile_content_is_text_and_stays_inside_the_page(
    moderator: Page, system: ConsoleStack
) -> None:
    page = moderator
    page.goto(system.web.url + "/console/decisions/discord/hostile")
    expect(page.locator(".content")).to_contain_text("<script>alert(1)</script>")
    assert page.locator(".content img, .content script").count() == 0
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, "a 10,000-character word widened the page"
    page.goto(system.web.url + "/console/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_another_tenants_moderator_can_neither_see_nor_review_a_decision(
    rival: Page, system: ConsoleStack
) -> None:
    page = rival
    page.goto(system.web.url + "/console/?route=")
    expect(page.locator("#queue tbody")).to_contain_text("Nothing matches")
    answer = page.goto(system.web.url + "/console/decisions/discord/to-review")
    assert answer is not None and answer.status == 404
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch("/console/decisions/discord/to-review/review", {
                method: "POST", body: new URLSearchParams({label: "SPAM"}),
                headers: {"X-CSRF-Token": csrf, Accept: "application/json"}});
            return answer.status;
        }"""
    )
    assert status == 404
