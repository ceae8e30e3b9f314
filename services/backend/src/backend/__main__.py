"""`python -m backend`: serve the API with uvicorn on BACKEND_HOST:BACKEND_PORT.

Configuration problems end the process with one line on stderr and exit status 2, before
uvicorn starts, so supervisors and `inv up` show the reason instead of a traceback.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from backend.core.config import BackendSettings, get_settings
from common import multiprocess
from common.logging import configure_logging


def describe_config_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]).upper() if error["loc"] else "?"
        message = "is not set" if error["type"] == "missing" else error["msg"]
        problems.append(f"{key} {message}")
    return "backend: invalid configuration: " + "; ".join(problems)


def load_settings() -> BackendSettings:
    try:
        return get_settings()
    except ValidationError as exc:
        print(describe_config_error(exc), file=sys.stderr)  # noqa: T201 - the CLI's one line
        raise SystemExit(2) from None


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = load_settings()
    configure_logging("backend", settings.log_level, json_logs=settings.log_json)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; this handler (the
    # one it restores) turns that into a clean exit 0 instead of death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if settings.backend_workers > 1:
        # Each uvicorn worker process counts its own requests; in multiprocess mode they all
        # write to one directory and whichever answers /metrics reports the sum.
        multiprocess.prepare("backend", settings.backend_port)
    uvicorn.run(
        "backend.main:app",
        host=settings.backend_host,
        port=settings.backend_port,
        workers=settings.backend_workers,
        # None keeps the root logger we configured (one format for app and server logs).
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
