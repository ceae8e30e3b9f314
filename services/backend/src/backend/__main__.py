"""`python -m backend`: serve the API with uvicorn on BACKEND_HOST:BACKEND_PORT.

Exit codes (common.entrypoint): 0 after a clean shutdown, 2 for bad configuration, 3 when
the port cannot be bound (uvicorn's own).
"""

from __future__ import annotations

import sys

from backend.config import SERVICE_NAME, BackendSettings, get_settings
from common import entrypoint, multiprocess


def serve(settings: BackendSettings) -> int:
    import uvicorn

    entrypoint.exit_0_on_sigterm()
    if settings.backend_workers > 1:
        # Each uvicorn worker process counts its own requests; in multiprocess mode they all
        # write to one directory and whichever answers /metrics reports the sum.
        multiprocess.prepare(SERVICE_NAME, settings.backend_port)
    # uvicorn.run, not a Server: it also runs BACKEND_WORKERS > 1 processes.
    uvicorn.run(
        "backend.main:app",
        host=settings.backend_host,
        port=settings.backend_port,
        workers=settings.backend_workers,
        # None keeps the root logger configured by the entrypoint (one format for all logs).
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


def main() -> int:
    return entrypoint.run(SERVICE_NAME, get_settings, serve)


if __name__ == "__main__":
    sys.exit(main())
