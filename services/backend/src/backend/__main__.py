"""`python -m backend`: serve the API with uvicorn on BACKEND_HOST:BACKEND_PORT.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for bad configuration (one line on
stderr naming each bad key, before uvicorn starts), 3 when the port cannot be bound.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from pydantic import ValidationError

from backend.config import SERVICE_NAME, get_settings
from common.logging import configure_logging
from common.settings import report_config_error


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        return report_config_error(SERVICE_NAME, exc)
    # Imported once the configuration is known good: a bad one fails fast.
    import uvicorn

    configure_logging(SERVICE_NAME, settings.log_level, json_logs=settings.log_json)
    # uvicorn shuts down gracefully on SIGTERM, restores this handler and re-raises the
    # signal: a requested stop becomes exit 0, not death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # uvicorn.run, not a Server: it also runs BACKEND_WORKERS > 1 processes, and exits 3
    # itself when the port cannot be bound.
    uvicorn.run(
        "backend.main:app",
        host=settings.backend_host,
        port=settings.backend_port,
        workers=settings.backend_workers,
        # None keeps the root logger configured above (one format for app and server).
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
