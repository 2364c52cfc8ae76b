"""`make demo`: send a few hundred events from the shipped reference data to a running system
(`make run`), wait for their decisions and print them with the ledger.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.admission.apikeys import ApiKey
from core.models import Category
from core.screening.reference.dataset import ReferenceSet
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, key: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """One JSON request to the web app."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def sample(count: int, seed: int) -> list[tuple[str, Category]]:
    """A mix of harmful and benign texts from the reference set (short ones, as chat is)."""
    reference = ReferenceSet.load()
    rows = [
        (t, label)
        for t, label in zip(reference.texts, reference.labels, strict=True)
        if len(t) <= 280
    ]
    rng = random.Random(seed)
    by_label: dict[Category, list[tuple[str, Category]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    chosen = rng.sample(by_label[Category.LOW_RISK], count // 2)
    harmful = [
        row for label, group in by_label.items() if label is not Category.LOW_RISK for row in group
    ]
    chosen += rng.sample(harmful, count - len(chosen))
    rng.shuffle(chosen)
    return chosen


def system(settings: Settings) -> tuple[str, str]:
    """The base URL of the running system (WEB_HOST, WEB_PORT) and the first of its API_KEYS."""
    base = f"http://{settings.web_host}:{settings.web_port}"
    return base, ApiKey.parse(settings.effective_api_keys[0]).key


def answers(base: str, key: str) -> bool:
    """Whether the system answers; says how to start it when not."""
    try:
        call(f"{base}/healthz", key)
    except (urllib.error.URLError, ConnectionError):
        sys.stderr.write(f"nothing answers at {base}: start the system with `make run` first\n")
        return False
    return True


def send(base: str, key: str, rows: list[tuple[str, Category]]) -> list[dict[str, Any]] | None:
    """Send the texts as events (from a few platforms, one user each); None when refused."""
    run = datetime.now(UTC).strftime("%H%M%S")
    stamp = datetime.now(UTC).isoformat()
    platforms = ["discord", "slack", "reddit", "telegram"]
    events = [
        {"event_id": f"demo-{run}-{i}", "platform": platforms[i % len(platforms)],
         "event_type": "message", "user_id": f"demo-user-{i % 40}", "content": text,
         "timestamp": stamp}
        for i, (text, _) in enumerate(rows)
    ]  # fmt: skip
    for start in range(0, len(events), 100):
        status, answer = call(
            f"{base}/v1/events/batch", key, "POST", {"events": events[start : start + 100]}
        )
        if status != 200:
            sys.stderr.write(f"batch refused: {status} {answer}\n")
            return None
    return events


def main() -> int:
    """Send, wait, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--timeout", type=float, default=300)
    options = parser.parse_args()
    base, key = system(Settings())
    if not answers(base, key):
        return 2
    rows = sample(options.count, options.seed)
    events = send(base, key, rows)
    if events is None:
        return 1
    sys.stdout.write(f"sent {len(events)} events; waiting for decisions...\n")
    decisions: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + options.timeout
    while len(decisions) < len(events) and time.monotonic() < deadline:
        for event in events:
            if event["event_id"] not in decisions:
                status, state = call(
                    f"{base}/v1/events/{event['platform']}/{event['event_id']}", key
                )
                if status == 200 and state["state"] == "screened":
                    decisions[event["event_id"]] = state["decision"]
        time.sleep(1)
    confusion: Counter[tuple[str, str]] = Counter()
    for i, (event, (text, label)) in enumerate(zip(events, rows, strict=True)):
        decision = decisions.get(event["event_id"])
        if decision is None:
            continue
        truth = "harmful" if label is not Category.LOW_RISK else "benign"
        confusion[truth, decision["route"]] += 1
        if i < 25:
            flags = ",".join(flag["id"] for flag in decision["flags"][:3])
            snippet = text.replace("\n", " ")[:70]
            sys.stdout.write(
                f"{decision['route']:<5} {decision['category']:<20} {decision['risk_score']:.2f}"
                f"  (labelled {label.value:<19}) {flags:<30} {snippet}\n"
            )
    sys.stdout.write(
        f"\n{len(decisions)}/{len(events)} decided. labelled harmful -> "
        f"high {confusion['harmful', 'high']}, low {confusion['harmful', 'low']}; "
        f"labelled benign -> low {confusion['benign', 'low']}, high {confusion['benign', 'high']}\n"
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ledger.py")], check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
