"""Where an event's time goes between acceptance and decision, from what the system records.

Four sources, none of them added to the product's path for this: Celery's task events, which
the workers and the batcher send anyway (`worker_send_task_events`, `task_send_sent_event`) and
a receiver here captures (a screening task sent by the batcher, received by the worker's main
process, started in the child that runs it, succeeded; each drain tick started and succeeded);
each decision's `ingested_at` and `screened_at`; and the id of its decision-stream entry, which
is the time the decide script wrote it. A decision belongs to the screening task that was
running when it was screened: the benchmark's one worker process screens one batch at a time.

An event's time splits into: `stream` (accepted to the batcher's publish of its batch: waiting
to be read, the read, the choice of queue), `broker` (publish to the worker's main process
receiving the task: with late acknowledgement and a prefetch of 1, a worker takes its next task
only once the one before is done, so this is the wait behind the batch being screened), `pool`
(received to started in the child), `screen` (started to `screened_at`: claiming the entries,
the top-up, history, the engine) and `write` (`screened_at` to the decision entry). An event a
batch took in when it started counts each segment from its own arrival.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from celery import Celery

from core.stream.shards import ShardedScreening

SCREEN_TASK = "tasks.screening.screen_batch"
DRAIN_TASK = "tasks.batcher.drain"
SEGMENTS = ("stream", "broker", "pool", "screen", "write")


@dataclass
class TaskTimes:
    """The moments Celery's events gave for one task (seconds since the epoch)."""

    name: str = ""
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    succeeded: float | None = None


@dataclass
class TaskEvents:
    """A receiver of Celery's task events on its own thread, keeping each task's moments."""

    app: Celery
    tasks: dict[str, TaskTimes] = field(default_factory=dict)
    _ready: threading.Event = field(default_factory=threading.Event)
    _receiver: Any = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Capture events from now on (returns once the receiver listens)."""
        self._thread = threading.Thread(target=self._run, name="task-events", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the task-event receiver did not start")

    def stop(self) -> None:
        """Stop capturing (within about a second)."""
        if self._receiver is not None:
            self._receiver.should_stop = True
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        with self.app.connection_for_read() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self._on})
            # Called before each wait for events, once the receiver's queue is bound.
            self._receiver.on_iteration = self._ready.set
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def _on(self, event: dict[str, Any]) -> None:
        kind, uuid = event.get("type", ""), event.get("uuid")
        if not uuid or not kind.startswith("task-"):
            return
        times = self.tasks.setdefault(uuid, TaskTimes())
        times.name = event.get("name") or times.name
        moment = kind.removeprefix("task-")
        if moment in ("sent", "received", "started", "succeeded"):
            setattr(times, moment, float(event["timestamp"]))


def decisions_with_entries(stream: ShardedScreening, prefix: str) -> list[tuple[float, Any]]:
    """Each decision of events whose id starts with `prefix`, with the moment (s) its entry was
    written to the high or low stream."""
    out = []
    for shard in stream.shards:
        for name in (shard.keys.high_stream, shard.keys.low_stream):
            entries: Any = shard.client.xrange(name)
            for entry_id, fields in entries:
                decision = orjson.loads(fields[b"decision"])
                if decision["event_id"].startswith(prefix):
                    out.append((int(entry_id.split(b"-")[0]) / 1000, decision))
    return out


def _moment(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def breakdown(events: TaskEvents, written: list[tuple[float, Any]]) -> dict[str, Any]:
    """Per segment, the median and mean ms over the decisions; the batches' sizes; how often
    the drain tick was not running."""
    screens = sorted(
        (
            t
            for t in events.tasks.values()
            if t.name == SCREEN_TASK and t.sent and t.received and t.started
        ),
        key=lambda t: t.started or 0.0,
    )
    starts = [t.started or 0.0 for t in screens]
    rows: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    sizes: dict[int, int] = {}
    screen_s: dict[int, float] = {}
    for at, decision in written:
        screened, ingested = _moment(decision["screened_at"]), _moment(decision["ingested_at"])
        i = bisect.bisect_right(starts, screened) - 1
        if i < 0:
            continue
        task = screens[i]
        assert task.sent is not None and task.received is not None and task.started is not None
        sizes[i] = sizes.get(i, 0) + 1
        screen_s[i] = screened - task.started
        # An event a batch took in when it started arrived after the batch was sent: each
        # segment counts from whichever is later, the event or the step before.
        rows["stream"].append(max(0.0, task.sent - ingested))
        rows["broker"].append(max(0.0, task.received - max(ingested, task.sent)))
        rows["pool"].append(max(0.0, task.started - max(ingested, task.received)))
        rows["screen"].append(screened - max(ingested, task.started))
        rows["write"].append(at - screened)
    drains = sorted(
        (t.started, t.succeeded)
        for t in events.tasks.values()
        if t.name == DRAIN_TASK and t.started and t.succeeded
    )
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(drains)]
    per_batch = list(sizes.values()) or [0]
    # Screening time against batch size: what a batch costs whatever its size, and per event.
    fit = (
        np.polyfit(per_batch, [screen_s[i] for i in sizes], 1)
        if len(set(per_batch)) > 1
        else (float("nan"), float("nan"))
    )
    return {
        "events": len(rows["stream"]),
        "p50_ms": {name: round(float(np.median(v)) * 1000, 1) for name, v in rows.items() if v},
        "mean_ms": {name: round(float(np.mean(v)) * 1000, 1) for name, v in rows.items() if v},
        "batches": len(sizes),
        "batch_events_p50": float(np.median(per_batch)),
        "batch_events_max": max(per_batch),
        "screen_ms_per_batch": round(float(fit[1]) * 1000, 1),
        "screen_ms_per_event": round(float(fit[0]) * 1000, 2),
        "drain_ticks": len(drains),
        "drain_gap_ms_p50": round(float(np.median(gaps)) * 1000, 1) if gaps else None,
    }
