"""Traces of the API: its requests (FastAPI) and the pipeline messages it enqueues (Celery
puts the trace context into each message's headers, so the worker continues the trace)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from common import tracing

# Probes and scrapes every few seconds would bury the requests worth looking at.
UNTRACED = "/health,/health/ready,/metrics"


def instrument(app: FastAPI, endpoint: str | None, environment: str) -> bool:
    if not tracing.setup("backend", endpoint, environment):
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # One span per request: the per-chunk receive/send spans triple the cost and say little.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED, exclude_spans=["receive", "send"]
    )
    celery = CeleryInstrumentor()
    if not celery.is_instrumented_by_opentelemetry:
        celery.instrument()
    return True


def endpoint_from_env() -> tuple[str | None, str]:
    """For an app built before its settings are read (uvicorn imports `backend.main:app`)."""
    return os.environ.get(tracing.ENDPOINT_ENV) or None, os.environ.get("APP_ENV", "dev")
