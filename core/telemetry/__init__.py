"""Telemetry shared by every process: OpenTelemetry set-up and the stream hop's spans.

`configure_tracing` installs a process's tracer provider from the standard `OTEL_*` variables
(off unless `OTEL_TRACES_EXPORTER` names an exporter); `StreamSpans` makes the spans of the
ingest stream's hop per the messaging semantic conventions: a `send` span whose context goes
into each stream entry's `traceparent`, and `receive` / `process` spans on the consumer side that
link to every entry's context.
"""

from core.telemetry.messaging import (
    StreamSpans,
    current_traceparent,
    trace_id_of,
    unrecorded_context,
)
from core.telemetry.tracing import configure_tracing, exporter_names, records_nothing

__all__ = [
    "StreamSpans",
    "configure_tracing",
    "current_traceparent",
    "exporter_names",
    "records_nothing",
    "trace_id_of",
    "unrecorded_context",
]
