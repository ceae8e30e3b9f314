"""`inv health` says which speech engine serves, from the whisper service's own metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from mi_testing import free_port
from ops import health


@pytest.fixture
def metrics() -> Iterator[tuple[str, Gauge]]:
    registry = CollectorRegistry()
    ready = Gauge(
        "whisper_engine_ready",
        "1 once the engine is loaded",
        ["engine", "model", "device", "compute_type"],
        registry=registry,
    )
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_port}/metrics", ready
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_serving_engine_is_read_from_the_ready_gauge(metrics: tuple[str, Gauge]) -> None:
    url, ready = metrics
    assert health.serving_engine(url) is None  # still loading: no engine is ready
    ready.labels("pocketsphinx", "en-us", "cpu", "default").set(0)
    ready.labels("faster-whisper", "whisper", "cpu", "int8").set(1)
    assert health.serving_engine(url) == "faster-whisper, model whisper, cpu/int8"


def test_a_metrics_page_that_does_not_answer_is_no_error() -> None:
    assert health.serving_engine(f"http://127.0.0.1:{free_port()}/metrics") is None
