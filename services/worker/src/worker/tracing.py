"""Traces of the pipeline, per pool process: each task continues the trace its message
carries (Celery headers), and its calls to whisper (gRPC) and llm (httpx) carry it on.

Set up in every prefork child (`worker_process_init`), before that child builds its clients:
exporters, gRPC channels and their threads do not survive the fork from the main process.
With `--pool solo` or `threads` no child starts, and tasks are not traced.
"""

from __future__ import annotations

from common import tracing
from worker.config import WorkerSettings


def instrument_pool_process(settings: WorkerSettings) -> bool:
    if not tracing.setup("worker", settings.otel_exporter_otlp_endpoint, settings.app_env):
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    CeleryInstrumentor().instrument()
    GrpcInstrumentorClient().instrument()
    HTTPXClientInstrumentor().instrument()
    return True
