"""Traces of the llm service: each analysis request, continuing the worker's trace."""

from __future__ import annotations

from fastapi import FastAPI

from common import tracing

UNTRACED = "/health,/health/ready,/metrics"


def instrument(app: FastAPI, service: str, endpoint: str | None, environment: str) -> bool:
    if not tracing.setup(service, endpoint, environment):
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # One span per request: the per-chunk receive/send spans triple the cost and say little.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED, exclude_spans=["receive", "send"]
    )
    return True
