"""Load test of the screening API with Locust.

`make load` runs it headless against a running system and writes CSV and HTML reports under
var/load/; `locust -f bench/locustfile.py --host http://127.0.0.1:8000` opens Locust's web UI; the
compose stack's `load` profile runs it beside the services.

Each simulated platform sends what real ones send, in these proportions: single events (half
the traffic) and batches, retries of events it already sent (duplicates), a few conflicting
reuses of an id and malformed bodies, lookups of its events, and synchronous screens. Texts come
from the labelled examples the service ships (core/screening/data/reference), so rules and the
model see realistic content. Expected refusals (duplicate, conflict, invalid) are successes;
429 and 503 are the service's backpressure working, so they are reported under their own name
("... [backpressure]") and not as failures. The run fails (exit 1) when the failure ratio or the
99th-percentile response time pass `--max-fail-ratio` / `--max-p99-ms`.

The file needs nothing but Locust and the standard library, so Locust's own image runs it.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import random
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

SHIPPED = Path(__file__).parents[1] / "core" / "screening" / "data" / "reference"
EXAMPLES = Path(os.environ.get("LOAD_EXAMPLES", SHIPPED / "reference.csv.gz"))
API_KEY = os.environ.get("LOAD_API_KEY", "dev-key")
PLATFORMS = ("discord", "slack", "web_chat", "telegram", "twitter", "reddit")
EVENT_TYPES = ("message", "comment", "post", "direct_message", "reply")
BACKPRESSURE = frozenset({429, 503})
_RUN = os.urandom(4).hex()  # event ids of this run never collide with an earlier run's
_ids = itertools.count()


def load_texts(path: Path, count: int = 5000, seed: int = 7) -> list[str]:
    """A fixed random sample of the labelled examples' texts."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(io.StringIO(handle.read()))]
    return random.Random(seed).sample(texts, min(count, len(texts)))


TEXTS = load_texts(EXAMPLES)


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        help="exit 1 when more than this share of requests fail",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        default=1000.0,
        help="exit 1 when the 99th-percentile response time is above this",
    )


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _check_limits(environment: Any, **_: Any) -> None:
    """Fail the run when the failure ratio or the p99 passes its limit."""
    options = environment.parsed_options
    total = environment.stats.total
    p99 = total.get_response_time_percentile(0.99) or 0.0
    problems = []
    if total.fail_ratio > options.max_fail_ratio:
        problems.append(f"failure ratio {total.fail_ratio:.2%} > {options.max_fail_ratio:.2%}")
    if p99 > options.max_p99_ms:
        problems.append(f"p99 {p99:.0f} ms > {options.max_p99_ms:.0f} ms")
    for problem in problems:
        print(f"load test limit passed: {problem}")  # noqa: T201 - Locust's console
    if problems:
        environment.process_exit_code = 1


class Platform(FastHttpUser):
    """One platform posting its users' events, retrying some, and looking some up."""

    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        """Remember recently accepted events, for retries and lookups."""
        self.headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
        self.sent: deque[dict[str, Any]] = deque(maxlen=500)
        self.random = random.Random()

    def event(self) -> dict[str, Any]:
        """A new valid event with a text from the examples."""
        return {
            "event_id": f"load-{_RUN}-{next(_ids)}",
            "platform": self.random.choice(PLATFORMS),
            "event_type": self.random.choice(EVENT_TYPES),
            "user_id": f"user-{self.random.randrange(5000)}",
            "channel_id": f"channel-{self.random.randrange(50)}",
            "content": self.random.choice(TEXTS),
            "timestamp": datetime.now(UTC).isoformat(),
            "metadata": {"client": "locust"},
        }

    def call(
        self,
        method: str,
        path: str,
        name: str,
        expected: set[int],
        body: Any = None,
        *,
        data: bytes | None = None,
    ) -> Any:
        """One request; `expected` statuses are successes, 429/503 are backpressure."""
        options: dict[str, Any] = {"headers": self.headers, "name": name, "catch_response": True}
        if data is not None:
            options["data"] = data
        elif body is not None:
            options["json"] = body
        with self.client.request(method, path, **options) as response:
            if response.status_code in expected:
                response.success()
                return response
            if response.status_code in BACKPRESSURE:
                response.request_meta["name"] = f"{name} [backpressure]"
                response.success()
                return None
            response.failure(f"unexpected {response.status_code}: {response.text[:200]}")
            return None

    @task(50)
    def single_event(self) -> None:
        """POST one new event."""
        body = self.event()
        if self.call("POST", "/v1/events", "POST /v1/events", {202}, body):
            self.sent.append(body)

    @task(10)
    def batch(self) -> None:
        """POST a batch of 10-100 events, now and then with an invalid item."""
        items = [self.event() for _ in range(self.random.randint(10, 100))]
        if self.random.random() < 0.2:
            items[0] = {**items[0], "content": " "}  # blank content: that item is invalid
        batch = {"events": items}
        response = self.call("POST", "/v1/events/batch", "POST /v1/events/batch", {200}, batch)
        if response is None:
            return
        for result in response.json()["results"]:
            if result["status"] == "accepted":
                self.sent.append(items[result["index"]])

    @task(10)
    def retry(self) -> None:
        """Send an event again, as a client whose first answer was lost: a duplicate."""
        if self.sent:
            body = self.random.choice(self.sent)
            self.call("POST", "/v1/events", "POST /v1/events (retry)", {200}, body)

    @task(2)
    def conflict(self) -> None:
        """Reuse an event id with other content: 409."""
        if self.sent:
            body = {**self.random.choice(self.sent), "content": self.random.choice(TEXTS) + " !"}
            self.call("POST", "/v1/events", "POST /v1/events (conflict)", {409}, body)

    @task(3)
    def invalid(self) -> None:
        """A malformed body (400) or an event with invalid fields (422)."""
        if self.random.random() < 0.5:
            self.call("POST", "/v1/events", "POST /v1/events (bad JSON)", {400}, data=b'{"event')
        else:
            body = {**self.event(), "platform": "myspace"}
            self.call("POST", "/v1/events", "POST /v1/events (invalid)", {422}, body)

    @task(15)
    def lookup(self) -> None:
        """Look up an event sent earlier: queued or screened."""
        if self.sent:
            body = self.random.choice(self.sent)
            path = f"/v1/events/{body['platform']}/{body['event_id']}"
            self.call("GET", path, "GET /v1/events/<platform>/<id>", {200})

    @task(3)
    def screen(self) -> None:
        """Screen 1-5 texts synchronously."""
        texts = self.random.sample(TEXTS, self.random.randint(1, 5))
        self.call("POST", "/v1/screen", "POST /v1/screen", {200}, {"texts": texts})
