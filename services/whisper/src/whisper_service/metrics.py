"""Prometheus metrics of the gRPC server, served on their own small HTTP port.

Each server owns a registry (not the process-global one) so that several servers in one
process, as in the tests, count independently.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter(
            "whisper_requests",
            "Transcriber RPCs by method and final gRPC status",
            ["method", "status"],
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "whisper_audio_seconds",
            "Seconds of audio transcribed",
            ["engine"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "whisper_processing_seconds",
            "Server time per transcription: receiving, decoding and recognising",
            ["method"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "whisper_in_flight_requests", "Transcriptions running now", registry=self.registry
        )
        self.engine_ready = Gauge(
            "whisper_engine_ready",
            "1 once the engine is loaded and serving, 0 while loading or shutting down",
            ["engine", "model", "device", "compute_type"],
            registry=self.registry,
        )
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server in a daemon thread; return the bound port."""
        self._http, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
