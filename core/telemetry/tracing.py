"""A process's tracer provider, configured by the standard `OTEL_*` variables; off by default.

Spans are recorded and exported only when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`,
`console`, or any other installed one). Without one the provider samples nothing and exports
nothing, but still gives every request a trace id, so each stream entry and decision carries a
`traceparent` that logs and the archive can be joined on; `OTEL_SDK_DISABLED=true` turns even
that off. Everything else is the SDK's own reading of the environment: `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_*` (endpoint, headers,
timeout, protocol), `OTEL_BSP_*` (batching).

Spans leave the process from a BatchSpanProcessor's thread, so a collector that does not answer
costs the request path nothing: spans queue, and the oldest are dropped when the queue is full.
That thread must start in the process that records the spans, after any fork: gunicorn workers
call this from the WSGI entry point (no preloading), Celery's prefork children on
`worker_process_init`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from core.errors import ConfigError

log = structlog.get_logger(__name__)

EXPORTER_GROUP = "opentelemetry_traces_exporter"
# The entry point behind "otlp" for each OTLP protocol; the service ships the HTTP exporter.
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def disabled(environ: Mapping[str, str]) -> bool:
    """Whether OTEL_SDK_DISABLED turns the SDK off altogether."""
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for; empty when spans are not exported."""
    if disabled(environ):
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "none")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    return [] if "none" in names else names


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    """Instantiate an exporter by its entry-point name, as the OpenTelemetry SDK names them."""
    if name == "otlp":
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        name = _OTLP_BY_PROTOCOL.get(protocol, name)
    found = entry_points(group=EXPORTER_GROUP, name=name)
    if not found:
        raise ConfigError(f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed")
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def _resource(service_name: str) -> Resource:
    """The SDK's resource from the environment, named `service_name` unless it names itself."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: service_name}))
    return detected


def records_nothing(provider: object | None = None) -> bool:
    """Whether a tracer provider (the process's when None) samples no span at all: the one
    `configure_tracing` installs when no exporter is named."""
    if provider is None:
        provider = trace.get_tracer_provider()
    return isinstance(provider, TracerProvider) and provider.sampler is ALWAYS_OFF


def configure_tracing(service_name: str, environ: Mapping[str, str]) -> TracerProvider | None:
    """Install this process's tracer provider (None under OTEL_SDK_DISABLED).

    Call once per process, after any fork. Returns the provider, so a caller can flush it
    before a process exits on purpose.
    """
    if disabled(environ):
        return None
    names = exporter_names(environ)
    # Without an exporter nothing is sampled: spans cost an id and are never recorded.
    provider = TracerProvider(
        resource=_resource(service_name), sampler=None if names else ALWAYS_OFF
    )
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)))
    trace.set_tracer_provider(provider)
    if names:
        log.info("tracing_on", service=service_name, exporters=names)
    return provider
