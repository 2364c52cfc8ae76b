"""Whether a process's tracer provider records spans, as the web app asks before instrumenting."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import ProxyTracerProvider, get_current_span

from core.telemetry import records_nothing, unrecorded_context
from core.telemetry.messaging import span_context_of


def test_only_a_provider_that_samples_nothing_records_nothing() -> None:
    assert records_nothing(TracerProvider(sampler=ALWAYS_OFF))
    assert not records_nothing(TracerProvider(sampler=ALWAYS_ON))
    assert not records_nothing(TracerProvider())
    # No SDK provider at all (OTEL_SDK_DISABLED): the API's own no-op spans, left as they are.
    assert not records_nothing(ProxyTracerProvider())


def test_an_unrecorded_context_continues_the_callers_trace_with_a_span_id_of_its_own() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    span = get_current_span(unrecorded_context(parent))
    context = span.get_span_context()
    assert not span.is_recording()
    assert format(context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(context.span_id, "016x") != "00f067aa0ba902b7"
    assert not context.trace_flags.sampled


def test_an_unrecorded_context_without_a_valid_caller_starts_a_new_trace_each_time() -> None:
    contexts = [
        get_current_span(unrecorded_context(parent)).get_span_context()
        for parent in (None, "", "not-a-traceparent", None)
    ]
    assert all(context.is_valid for context in contexts)
    assert len({context.trace_id for context in contexts}) == len(contexts)
    assert span_context_of("not-a-traceparent") is None
