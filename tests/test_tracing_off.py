"""Tracing costs nothing when it is off: no tracer provider, no instrumentation, no span.

(Importing the OpenTelemetry API is not avoidable: FastAPI and redis-py import it, and
redis-py also imports the SDK's metrics package, whenever they are installed.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.observability

PROBE = """
import logging, sys
import backend.main, llm_service.main, whisper_service.server, worker.tasks
from common.logging import JsonFormatter
from opentelemetry import trace

print(type(trace.get_tracer_provider()).__name__)
watched = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation.")
print(sorted(m for m in sys.modules if m.startswith(watched)))
from opentelemetry.instrumentation.celery import CeleryInstrumentor
print(CeleryInstrumentor().is_instrumented_by_opentelemetry)
with trace.get_tracer("probe").start_as_current_span("work"):
    print(JsonFormatter("probe").format(logging.makeLogRecord({"msg": "hello"})))
"""


def _run(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()


def test_without_an_endpoint_nothing_is_traced() -> None:
    provider, modules, instrumented, line = _run()
    assert provider == "ProxyTracerProvider"  # the API's no-op until an SDK is installed
    assert modules == "[]"
    assert instrumented == "False"
    assert "trace_id" not in line


def test_an_endpoint_turns_it_all_on() -> None:
    # What the probe above would see if tracing leaked into the "off" case.
    provider, modules, instrumented, line = _run(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert provider == "TracerProvider"
    assert "opentelemetry.sdk.trace" in modules
    assert instrumented == "True"
    assert '"trace_id": "' in line
