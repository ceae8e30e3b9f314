"""Traces of the API: its requests (FastAPI's native telemetry, once `setup` installed a
tracer provider) and the pipeline messages it enqueues (Celery puts the trace context into
each message's headers, so the worker continues the trace)."""

from __future__ import annotations

import os

from fastapi.telemetry import TelemetryConfig

from common import tracing

# Spans for requests only (metrics are Prometheus', logs are the JSON lines), none for probes.
TELEMETRY = TelemetryConfig(exclude=tracing.untraced, metrics=False, logs=False)


def instrument(endpoint: str | None, environment: str) -> bool:
    if not tracing.setup("backend", endpoint, environment):
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    celery = CeleryInstrumentor()
    if not celery.is_instrumented_by_opentelemetry:
        celery.instrument()
    return True


def endpoint_from_env() -> tuple[str | None, str]:
    """For an app built before its settings are read (uvicorn imports `backend.main:app`)."""
    return os.environ.get(tracing.ENDPOINT_ENV) or None, os.environ.get("APP_ENV", "dev")
