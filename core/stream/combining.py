"""Concurrent requests' events queued together: one ingest script call for all that arrived
while the previous one was in flight.

A web worker serves many requests at once (greenlets under gevent, threads elsewhere), and
each used to make its own round trip to Redis for its dedup + XADD script. That round trip is
most of a single event's CPU on both sides: a single-event request cost the worker 98 of its 125
µs of CPU in the script call's send and read, and Redis 31-37 µs, against about 9 µs an event
in a batch of 500 (docs/benchmarks.md). So callers are combined: the first caller sends, and
those that arrive meanwhile queue; when the send returns, the first of them sends for all of
them at once. Nobody waits for a timer, so a lone request is not slowed, and under load a call
carries as many requests as arrived during one round trip. Every guarantee of the script stays:
each request's events are queued atomically, in order, with its own request id, trace context
and tenant; a failed call fails each request in it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from core.errors import StoreUnavailable
from core.models import Event
from core.stream.ingest import IngestRequest, IngestResult


class BatchIngest(Protocol):
    """What the combiner sends through: `EventStream` or `ShardedEventStream`."""

    def ingest_many(
        self, requests: Sequence[IngestRequest], now_ms: int | None = None
    ) -> list[list[IngestResult]]:
        """Each request's results, from one call."""
        ...


class _Ticket:
    """One caller's request and, once its call returns, its results or the call's error."""

    __slots__ = ("done", "error", "lead", "request", "results")

    def __init__(self, request: IngestRequest) -> None:
        self.request = request
        self.done = threading.Event()
        self.lead = False
        self.results: list[IngestResult] = []
        self.error: BaseException | None = None


class IngestCombiner:
    """`ingest` for concurrent callers, combined into as few script calls as the traffic allows.

    Create it in the process that uses it: under gevent the threading primitives it makes must
    be the patched ones (gunicorn's gevent worker patches before it loads the app).
    """

    def __init__(self, stream: BatchIngest, max_events: int = 500) -> None:
        self.stream = stream
        self.max_events = max_events
        self._lock = threading.Lock()
        self._waiting: deque[_Ticket] = deque()
        self._sending = False
        self.calls = 0  # script calls made, for tests and the benchmark's report

    def waiting(self) -> int:
        """How many callers are queued behind the call in flight."""
        with self._lock:
            return len(self._waiting)

    def ingest(
        self,
        events: Sequence[Event],
        request_id: str = "",
        traceparent: str = "",
        *,
        tenant: str,
    ) -> list[IngestResult]:
        """Queue a tenant's events (as `EventStream.ingest`), in one call with whichever other
        callers' events are waiting."""
        ticket = _Ticket(IngestRequest(events, tenant, request_id, traceparent))
        with self._lock:
            lead = not self._sending
            if lead:
                self._sending = True
            else:
                self._waiting.append(ticket)
        if not lead:
            ticket.done.wait()
            lead = ticket.lead
        if lead:
            self._send(ticket)
        if ticket.error is not None:
            raise ticket.error
        return ticket.results

    def _send(self, first: _Ticket) -> None:
        """Send `first` and those waiting behind it (up to `max_events`), then hand the turn on."""
        tickets = [first]
        try:
            # One turn of the scheduler first, so that callers already runnable (greenlets woken
            # by the previous call's answer) join this call instead of waiting for the next.
            time.sleep(0)
            with self._lock:
                size = len(first.request.events)
                waiting = self._waiting
                while waiting and size + len(waiting[0].request.events) <= self.max_events:
                    ticket = waiting.popleft()
                    size += len(ticket.request.events)
                    tickets.append(ticket)
            self.calls += 1
            found = self.stream.ingest_many([ticket.request for ticket in tickets])
            for ticket, results in zip(tickets, found, strict=True):
                ticket.results = results
        except Exception as exc:  # every caller in the call gets its failure, re-raised there
            for ticket in tickets:
                ticket.error = exc
        except BaseException:  # the sender itself was stopped: the others may retry (dedup)
            for ticket in tickets[1:]:
                ticket.error = StoreUnavailable("the call queuing these events was interrupted")
            raise
        finally:
            with self._lock:
                successor = self._waiting.popleft() if self._waiting else None
                if successor is None:
                    self._sending = False
                else:
                    successor.lead = True
            for ticket in tickets[1:]:
                ticket.done.set()
            if successor is not None:
                successor.done.set()
