"""A game day on a whole local system: Redis restarts, process kills and the memory ceiling,
under load.

The system (devtools.stack) runs under the supervisor on free ports, with its own Redis
(append-only, fsync always) and log directory. A client sends events at a steady rate and
retries what a failure refuses, as a platform would. Meanwhile Redis is restarted `restarts`
times, each time right after an append-only rewrite (BGREWRITEAOF), and each process kind is
killed once with SIGKILL (web, beat, pipeline worker, screening worker, Flower). Then Redis
reaches its memory ceiling (`maxmemory` set below what it uses: it refuses every write) for a
phase, and the ceiling is lifted. The supervisor brings everything back; nobody touches Redis
or the processes by hand. At the end the run checks: /readyz failed while Redis refused writes,
the ledger balanced (and at every sample taken during the run), /readyz ready with no backlog
(whatever `XINFO GROUPS` says), every accepted event decided exactly once, and every process
alive.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from core.keys import Keys
from core.stream import LedgerReader
from devtools.pipeline import wait_until
from devtools.redis_server import free_port
from devtools.stack import ROOT, LocalStack, build_stack
from devtools.supervisor import Supervisor

API_KEY = "chaos-key"
TENANT = "chaos"
TEXTS = [
    "I am going to find you and kill you",
    "see you at the meeting tomorrow morning",
    "you are a worthless idiot and everyone hates you",
    "thanks for sharing the recipe, it turned out great",
    "WIN a FREE iPhone!!! click bit.ly/free-prize now",
    "does anyone know when the next release is planned?",
]
# The process kinds killed once each, spread over the Redis restarts.
KINDS = ["web", "beat", "pipeline worker", "screening worker", "flower"]


@dataclass
class ChaosReport:
    """The figures of a run and whether each check held."""

    events_sent: int = 0
    events_accepted: int = 0
    decided_high: int = 0
    decided_low: int = 0
    dead_lettered: int = 0
    decided_twice: int = 0
    accepted_not_decided: int = 0
    refused_attempts: int = 0
    redis_restarts: int = 0
    memory_ceiling_s: float = 0.0
    readyz_at_ceiling: int = 0
    kills: list[str] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    ledger_samples: int = 0
    ledger_unbalanced_samples: int = 0
    final_ledger: dict[str, int] = field(default_factory=dict)
    final_backlog: int = -1
    redis_reported_lag: int | None = None
    readyz_status: int = 0
    all_running: bool = False
    seconds: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every check held."""
        return bool(self.checks) and all(self.checks.values())

    def to_json(self) -> str:
        """The report as JSON."""
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2)


class Load:
    """A client that sends batches of events at a steady rate and retries refused ones."""

    def __init__(self, url: str, rate_per_s: float, batch: int = 10) -> None:
        self.url = url
        self.batch = batch
        self.interval_s = batch / rate_per_s
        self.sent: list[str] = []
        self.accepted: set[str] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the batch in hand has been taken."""
        self._stop.set()
        self._thread.join(timeout=300)

    def _events(self) -> list[dict[str, Any]]:
        """The next batch of events, each with a fresh id and a numbered text."""
        now = datetime.now(UTC).isoformat()
        events = []
        for _ in range(self.batch):
            n = next(self._ids)
            events.append(
                {
                    "event_id": f"chaos-{n}",
                    "platform": "discord",
                    "event_type": "message",
                    "user_id": f"user-{n % 50}",
                    "content": f"{TEXTS[n % len(TEXTS)]} #{n}",
                    "timestamp": now,
                }
            )
        self.sent += [e["event_id"] for e in events]
        return events

    def _post(self, events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """POST a batch; its per-item results, or None when the service refused it."""
        request = urllib.request.Request(
            f"{self.url}/v1/events/batch",
            data=json.dumps({"events": events}).encode(),
            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                results: list[dict[str, Any]] = json.loads(response.read())["results"]
                return results
        except (OSError, ValueError):  # 503, a restarting web app, Redis away
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            events = self._events()
            while True:  # a refused batch is sent again, as is: duplicates are recognised
                results = self._post(events)
                if results is not None:
                    break
                self.refused += 1
                time.sleep(0.5)
            for result in results:
                if result["status"] in ("accepted", "duplicate"):
                    self.accepted.add(result["event_id"])
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def chaos_env(var: Path, web_port: int, flower_port: int) -> dict[str, str]:
    """The environment of the system under test: its own var/, ports, quick ticks."""
    env = {
        **os.environ,
        "VAR_DIR": str(var),
        "MODEL_DIR": os.environ.get("MODEL_DIR", str(ROOT / "var" / "models")),
        "WEB_PORT": str(web_port),
        "FLOWER_PORT": str(flower_port),
        "API_KEYS": f"{TENANT}:{API_KEY}",
        "FLOWER_BASIC_AUTH": f"chaos:{secrets.token_urlsafe(12)}",
        "REDIS_APPENDFSYNC": "always",
        "DRAIN_INTERVAL_S": "1",
        "RECLAIM_INTERVAL_S": "2",
        "RECLAIM_IDLE_S": "15",
        "WORKER_HEARTBEAT_S": "1",
        "BATCH_SIZE": "50",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    return env


def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    """Status and body of /readyz (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}


class GameDay:
    """One chaos run against a supervised local stack."""

    def __init__(
        self,
        var: Path,
        log_dir: Path,
        say: Callable[[str], None],
        *,
        restarts: int = 3,
        memory_ceiling: bool = True,
        rate_per_s: float = 20.0,
        phase_s: float = 20.0,
        settle_timeout_s: float = 600.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.say = say
        self.restarts = restarts
        self.memory_ceiling = memory_ceiling
        self.rate_per_s = rate_per_s
        self.phase_s = phase_s
        self.settle_timeout_s = settle_timeout_s
        web, flower = free_port(), free_port()
        environ = {**chaos_env(var, web, flower), **(env or {})}
        self.stack: LocalStack = build_stack(environ, free_port())
        assert self.stack.redis is not None
        self.url = f"http://127.0.0.1:{web}"
        self.supervisor = Supervisor(
            self.stack.programs, cwd=ROOT, env=self.stack.env, say=say, log_dir=log_dir
        )
        self.client = redis.Redis.from_url(self.stack.redis.url, socket_timeout=5)
        self.keys = Keys.from_settings(self.stack.settings)
        self.ledger = LedgerReader(self.client, self.keys)
        self.report = ChaosReport()
        self._done = threading.Event()

    # ------------------------------------------------------------------ the run

    def run(self) -> ChaosReport:
        """Start the system, break it under load, let it settle, and check it."""
        started = time.monotonic()
        supervising = threading.Thread(target=self._supervise, name="chaos-supervisor")
        supervising.start()
        try:
            wait_until(lambda: _readyz(self.url)[0] == 200, 180, "the system to come up")
            load = Load(self.url, self.rate_per_s)
            sampler = threading.Thread(target=self._sample_ledger, daemon=True)
            sampler.start()
            load.start()
            kinds = iter(KINDS)
            per_round = -(-len(KINDS) // self.restarts)
            for _ in range(self.restarts):
                time.sleep(self.phase_s)
                self._restart_redis()
                for kind in itertools.islice(kinds, per_round):
                    time.sleep(self.phase_s / (per_round + 1))
                    self._kill(kind)
            time.sleep(self.phase_s)
            if self.memory_ceiling:
                self._reach_memory_ceiling()
                time.sleep(self.phase_s)
            load.stop()
            self.say(f"load stopped: {len(load.accepted)} events accepted; waiting for decisions")
            wait_until(
                lambda: self._settled(len(load.accepted)),
                self.settle_timeout_s,
                "every accepted event to be decided",
                every=1,
            )
            self._check(load, time.monotonic() - started)
        finally:
            self._done.set()
            supervising.join(timeout=120)
        return self.report

    def _supervise(self) -> None:
        """Start and supervise the system from one thread (its children die with it)."""
        self.supervisor.start()
        try:
            self.supervisor.run(self._done.is_set)
        finally:
            self.supervisor.stop()

    # ------------------------------------------------------------------ faults

    def _restart_redis(self) -> None:
        """Rewrite the append-only file, then restart Redis on it (the supervisor does)."""
        assert self.stack.redis is not None
        server = self.stack.redis
        server.rewrite_aof()
        pid = self.supervisor.pid("redis-server")
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: self.supervisor.pid("redis-server") not in (None, pid), 60, "Redis")
        wait_until(server.answers, 60, "Redis to answer")
        self.report.redis_restarts += 1
        self.say(f"Redis restarted after an append-only rewrite ({self.report.redis_restarts})")

    def _reach_memory_ceiling(self) -> None:
        """Hold Redis at its memory ceiling for a phase under load, then lift the ceiling."""
        used = int(self.client.info("memory")["used_memory"])
        # Below what it holds, so that no write slips in as memory use moves by a few bytes.
        self.client.config_set("maxmemory", used // 2)
        started = time.monotonic()
        self.say(f"Redis past its memory ceiling ({used} of {used // 2} bytes): it refuses writes")
        try:
            time.sleep(self.phase_s / 2)
            self.report.readyz_at_ceiling = _readyz(self.url)[0]
            time.sleep(self.phase_s / 2)
        finally:
            self.client.config_set("maxmemory", 0)
        self.report.memory_ceiling_s = round(time.monotonic() - started, 1)
        self.say(f"memory ceiling lifted after {self.report.memory_ceiling_s} s")

    def _kill(self, kind: str) -> None:
        """SIGKILL one process of a kind and wait until the supervisor has replaced it."""
        name = kind if kind != "screening worker" else self._screening_worker()
        pid = self.supervisor.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self.supervisor.pid(name) not in (None, pid), 120, f"{name} back")
        self.report.kills.append(name)
        self.say(f"killed {name} (pid {pid}); the supervisor started it again")

    def _screening_worker(self) -> str:
        """The name of the first screening worker (cpu worker or gpu0 worker)."""
        return next(p.name for p in self.stack.programs if p.name.endswith(" worker")
                    and p.name != "pipeline worker")  # fmt: skip

    # ------------------------------------------------------------------ checks

    def _sample_ledger(self) -> None:
        """Read the ledger every second while the run lasts; it must balance at every read."""
        while not self._done.wait(1.0):
            with contextlib.suppress(Exception):  # Redis restarting: no sample this second
                balanced = self.ledger.ledger().balanced
                self.report.ledger_samples += 1
                self.report.ledger_unbalanced_samples += not balanced

    def _settled(self, accepted: int) -> bool:
        """Whether every accepted event has its outcome."""
        try:
            ledger = self.ledger.ledger()
        except Exception:
            return False
        return ledger.in_flight == 0 and ledger.accepted >= accepted

    def _event_ids(self, *streams: str) -> list[str]:
        """Event ids of every entry of these outcome streams, in order."""
        entries: list[Any] = [entry for stream in streams for entry in self.client.xrange(stream)]  # type: ignore[union-attr]
        return [json.loads(fields[b"event"])["event_id"] for _, fields in entries]

    def _check(self, load: Load, seconds: float) -> None:
        """Fill the report's figures and checks."""
        report = self.report
        ledger = self.ledger.ledger()
        decided = self._event_ids(self.keys.high_stream, self.keys.low_stream)
        dead = self._event_ids(self.keys.dlq_stream)
        high = self.client.xlen(self.keys.high_stream)
        groups = self.client.xinfo_groups(self.keys.ingest_stream)
        status, ready = _readyz(self.url)
        report.events_sent = len(load.sent)
        report.events_accepted = len(load.accepted)
        report.refused_attempts = load.refused
        report.decided_high = high
        report.decided_low = len(decided) - high
        report.dead_lettered = ledger.dead_lettered
        report.decided_twice = len(decided + dead) - len(set(decided + dead))
        report.accepted_not_decided = len(load.accepted - set(decided) - set(dead))
        report.final_ledger = {
            "accepted": ledger.accepted,
            "high": ledger.high,
            "low": ledger.low,
            "dead_lettered": ledger.dead_lettered,
            "in_flight": ledger.in_flight,
        }
        report.final_backlog = self.ledger.backlog()
        report.redis_reported_lag = next(
            (g.get("lag") for g in groups if g["name"].decode() == self.keys.group), None
        )
        report.readyz_status = status
        report.restarts = self.supervisor.restarts()
        report.all_running = self.supervisor.all_running()
        report.seconds = round(seconds, 1)
        report.checks = {
            "ledger balanced at the end": ledger.balanced,
            "ledger balanced at every sample": report.ledger_unbalanced_samples == 0,
            "readyz ready with no backlog": status == 200 and ready.get("backlog") == 0,
            "no false backlog": report.final_backlog == 0,
            "every accepted event decided exactly once": (
                report.decided_twice == 0
                and report.accepted_not_decided == 0
                and ledger.accepted == len(load.accepted)
            ),
            "every event sent was accepted": len(load.accepted) == len(load.sent),
            "Redis restarted as planned": report.redis_restarts == self.restarts,
            "readyz failed at the memory ceiling": (
                not self.memory_ceiling or report.readyz_at_ceiling == 503
            ),
            "each process kind killed once": len(report.kills) == len(KINDS),
            "no process left dead": report.all_running,
        }


def fresh_var(parent: Path | None = None) -> Path:
    """A var/ directory for a run: its own Redis data, sharing the built index and models."""
    var = Path(tempfile.mkdtemp(prefix="chaos-", dir=parent))
    for name in ("index", "models"):
        source = ROOT / "var" / name
        if source.exists():
            (var / name).symlink_to(source, target_is_directory=True)
    return var
