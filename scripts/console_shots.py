"""`make console-shots`: a screenshot of each console page of a running system (`make run`).

Finds the system as `make demo` does (WEB_HOST, WEB_PORT, the first of API_KEYS); when its
archive holds no high-risk decision yet, sends it a few hundred labelled events first (the
demo's sample) and waits for them. Then drives headless Chromium (Debian's `chromium`) through
the sign-in page, the queue, a decision, a review of it (approving the machine's category) and
its sender's page, writing one PNG per page to var/console/ (or --out).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, sync_playwright

from core.settings import Settings
from scripts.demo import answers, call, sample, send, system

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def high_risk(base: str, key: str) -> list[dict[str, object]]:
    """The system's latest high-risk archived decisions (none when it has no archive)."""
    status, page = call(f"{base}/v1/decisions?route=high&limit=20", key)
    return list(page["decisions"]) if status == 200 else []


def shoot(page: Page, out: Path, name: str) -> None:
    """Write the viewport of the page as NAME.png."""
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    sys.stdout.write(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")


def main() -> int:
    """Make sure there are decisions, then sign in and photograph each page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "console")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300)
    options = parser.parse_args()
    base, key = system(Settings())
    if not answers(base, key):
        return 2
    if not high_risk(base, key):
        if send(base, key, sample(options.count, int(time.time()))) is None:
            return 1
        sys.stdout.write(f"sent {options.count} events; waiting for high-risk decisions...\n")
        deadline = time.monotonic() + options.timeout
        while len(high_risk(base, key)) < 10 and time.monotonic() < deadline:
            time.sleep(2)
    decisions = high_risk(base, key)
    if not decisions:
        sys.stderr.write("no high-risk decision is archived (is DATABASE_URL set?)\n")
        return 1
    options.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{base}/console/sign-in")
        page.fill("#moderator", "Ana (moderator)")
        page.fill("#api_key", key)
        shoot(page, options.out, "sign-in")
        page.click("button[type=submit]")
        page.wait_for_selector("#queue")
        page.keyboard.press("j")
        shoot(page, options.out, "queue")
        page.keyboard.press("Enter")
        page.wait_for_selector(".content")
        shoot(page, options.out, "decision")
        page.keyboard.press("a")
        page.locator("#status:not(:empty)").wait_for()
        page.locator("#review").scroll_into_view_if_needed()
        shoot(page, options.out, "review")
        page.locator(".facts a").first.click()
        page.wait_for_selector("svg.chart")
        shoot(page, options.out, "user")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
