"""Prometheus metrics for the HTTP services, with one naming scheme."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from common import multiprocess

REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's full path template (`/api/v1/meetings/{id}`), or "unmatched".

    Routers that FastAPI includes lazily (nested `include_router`) leave the outer prefixes
    out of the route's own path; they are what precedes the part of the request path that
    the route's pattern matched.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    path = scope.get("path", "")
    pattern = getattr(route, "path_regex", None)
    if pattern is None or pattern.match(path):
        return str(template)
    for cut in range(1, len(path)):
        if path[cut] == "/" and pattern.match(path[cut:]):
            return path[:cut] + template
    return str(template)


class PrometheusMiddleware:
    """Pure ASGI middleware: counts and times requests by route template, not raw path.

    Labelling by the route template (`/api/v1/meetings/{id}`) keeps label cardinality
    bounded however many meetings exist.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            REQUESTS.labels(self.service, method, template, str(status)).inc()
            LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


def render_latest() -> tuple[bytes, str]:
    """The exposition body and its content type, for a `/metrics` endpoint.

    In multiprocess mode (several uvicorn workers) the body sums every process's files, so
    whichever worker answers the scrape reports the whole server.
    """
    if multiprocess.active():
        return generate_latest(multiprocess.registry()), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
