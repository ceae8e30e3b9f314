"""The backend app without its Prometheus middleware and without tracing: the `off`
baseline of `api_load.py --compare` (served by the uvicorn CLI, as `python -m backend` does
with uvicorn.run)."""

from __future__ import annotations

import os

from backend.main import create_app
from common.metrics import PrometheusMiddleware

os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
app = create_app()
app.user_middleware = [m for m in app.user_middleware if m.cls != PrometheusMiddleware]  # type: ignore[comparison-overlap]
