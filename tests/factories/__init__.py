"""The builders tests share, and where things are: import them from here.

Split by what they build: events (request bodies, validated events, a known harmful/benign
mix), decisions, stream entries and archive rows, the web app and its API key, a pipeline of
real processes, views of running processes, deployment files' command lines, and the
repository's places and reference slice.
Fixtures stay in the conftest.py files and are used by argument; no test module imports
another test module or a conftest.
"""

from tests.factories.commands import module_form
from tests.factories.decisions import StandInEngine, decision, decision_for
from tests.factories.entries import (
    TRACEPARENT,
    dlq_fields,
    entry_fields,
    ingest,
    now,
    rows_of,
    stream_id_at,
)
from tests.factories.events import (
    BENIGN,
    HARMFUL,
    event_body,
    is_harmful,
    make_event,
    mixed_events,
    nested,
)
from tests.factories.pipelines import (
    POISON,
    SLOW,
    ConsoleStack,
    Pipeline,
    assert_each_decided_once,
    pipeline_env,
)
from tests.factories.processes import alive, http_status
from tests.factories.repository import ROOT, SHARED_DATA, write_small_reference
from tests.factories.web import API_KEY, AUTH, RIVAL_ENTRY, RIVAL_KEY, make_app

__all__ = [
    "API_KEY",
    "AUTH",
    "BENIGN",
    "HARMFUL",
    "POISON",
    "RIVAL_ENTRY",
    "RIVAL_KEY",
    "ROOT",
    "SHARED_DATA",
    "SLOW",
    "TRACEPARENT",
    "ConsoleStack",
    "Pipeline",
    "StandInEngine",
    "alive",
    "assert_each_decided_once",
    "decision",
    "decision_for",
    "dlq_fields",
    "entry_fields",
    "event_body",
    "http_status",
    "ingest",
    "is_harmful",
    "make_app",
    "make_event",
    "mixed_events",
    "module_form",
    "nested",
    "now",
    "pipeline_env",
    "rows_of",
    "stream_id_at",
    "write_small_reference",
]
