"""Traces of the whisper server: each Transcriber RPC, continuing its caller's trace.

Health checks and reflection are left out: probes call them every few seconds.
"""

from __future__ import annotations

from typing import Any

from common import tracing


def server_interceptors(service_name: str) -> list[Any]:
    """gRPC server interceptors for `grpc.server(...)`: none unless tracing is on."""
    if not tracing.active():
        return []
    from opentelemetry.instrumentation.grpc import filters, server_interceptor

    return [server_interceptor(filter_=filters.service_name(service_name))]
