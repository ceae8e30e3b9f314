"""The backend without its observability, the `off` baseline of `api_observability.py --compare`:
no Prometheus middleware, no tracing. Run as a script, it serves that app exactly the way
`python -m backend` serves the real one (same settings, logging and uvicorn options)."""

from __future__ import annotations

import os
import sys

from backend.config import SERVICE_NAME, BackendSettings, get_settings
from backend.main import create_app
from common import entrypoint
from common.metrics import PrometheusMiddleware

os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
app = create_app()
app.user_middleware = [m for m in app.user_middleware if m.cls != PrometheusMiddleware]  # type: ignore[comparison-overlap]


def serve(settings: BackendSettings) -> int:
    import uvicorn

    entrypoint.exit_0_on_sigterm()
    uvicorn.run(
        "api_bare_app:app",
        host=settings.backend_host,
        port=settings.backend_port,
        workers=settings.backend_workers,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(entrypoint.run(SERVICE_NAME, get_settings, serve))
