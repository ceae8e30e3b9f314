"""OpenTelemetry traces across the services, sent over OTLP/gRPC when an endpoint is set.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (`http://collector:4317`): then the SDK is never
imported and no instrumentation is installed, so a service pays nothing for it. On, each
process gets one TracerProvider whose BatchSpanProcessor hands finished spans to a background
thread through a bounded queue: a request only appends to that queue, and when the collector
is slow, wrong or gone the queue fills and spans are dropped, never requests. Export failures
are logged once per outage (and once more when it recovers), not once per batch.

The services install their framework's instrumentation themselves (their own dependencies):
`setup()` returns whether they should. FastAPI traces its requests natively once a tracer
provider exists (`FastAPI(telemetry=...)`, cheaper than the ASGI instrumentation package:
measured in benchmarks/api_load.py --compare). Propagation is W3C traceparent everywhere: HTTP and
gRPC headers, and Celery message headers (so a meeting is one trace from upload to done).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
# Bounded: at most this many finished spans wait for export; more are dropped.
QUEUE_SPANS = 2048
BATCH_SPANS = 512
# One export (with the exporter's own retries) gives up after this; it runs in the background
# thread, but also bounds how long a stopping process waits for its last spans.
EXPORT_TIMEOUT_S = 5.0

_active_pid: int | None = None
# Probes and scrapes every few seconds would bury the requests worth looking at.
UNTRACED_PATHS = frozenset({"/health", "/health/ready", "/metrics"})


def active() -> bool:
    """Whether this process exports traces (set up here, not inherited through a fork)."""
    return _active_pid == os.getpid()


def check_endpoint(endpoint: str) -> str | None:
    """None when the endpoint is usable, else what is wrong with it."""
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "must look like http://host:4317 (or https:// for TLS)"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or too large
    except ValueError as exc:
        return str(exc)
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol != "grpc":
        return f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only grpc is supported"
    return None


def setup(service: str, endpoint: str | None, environment: str = "dev") -> bool:
    """Export this process's spans to `endpoint`; False (tracing off) when there is none.

    A malformed endpoint is logged and leaves tracing off: it must never stop a service.
    """
    global _active_pid
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if active():
        return True
    problem = check_endpoint(endpoint)
    if problem is not None:
        logger.error("tracing is off: %s=%r %s", ENDPOINT_ENV, endpoint, problem)
        return False

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from common.tracing_export import ReportOnce

    # The exporter logs every failed batch; ours says it once per outage.
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").setLevel(logging.CRITICAL)
    timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") or EXPORT_TIMEOUT_S)
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, override these.
    resource = Resource.create({"service.name": service, "deployment.environment": environment})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(
            ReportOnce(OTLPSpanExporter(endpoint=endpoint, timeout=timeout), endpoint),
            max_queue_size=QUEUE_SPANS,
            max_export_batch_size=BATCH_SPANS,
            export_timeout_millis=int(timeout * 1000),
        )
    )
    trace.set_tracer_provider(provider)
    _active_pid = os.getpid()
    logger.info("tracing: exporting spans to %s (OTLP/gRPC)", endpoint)
    return True


def untraced(scope: MutableMapping[str, Any]) -> bool:
    """For FastAPI's `telemetry={"exclude": ...}`: requests that get no span."""
    return scope.get("path") in UNTRACED_PATHS


def log_fields() -> dict[str, str]:
    """trace_id and span_id of the current span, for log lines (nothing when tracing is off)."""
    if _active_pid is None:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
