"""What every service's `python -m <service>` does before it serves, in one place.

    def main() -> int:
        return entrypoint.run(SERVICE_NAME, get_settings, serve)

Exit codes are the same for every service: 0 after a requested stop, 2 when the configuration
is refused (one line on stderr naming each bad key, before anything starts), anything else
is the server's own failure.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

from pydantic import ValidationError

from common.logging import configure_logging
from common.settings import ServiceSettings, report_config_error

S = TypeVar("S", bound=ServiceSettings)


def run(service: str, get_settings: Callable[[], S], serve: Callable[[S], int]) -> int:
    """Read the settings (or refuse them), set up logging, then hand over to `serve`."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        return report_config_error(service, exc)
    configure_logging(service, settings.log_level, json_logs=settings.log_json)
    return serve(settings)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_0_on_sigterm() -> None:
    """uvicorn stops gracefully on SIGTERM, restores the handler it found (this one) and
    re-raises the signal: a requested stop then exits 0 instead of dying by the signal, so
    supervisord and Docker do not count it as a crash."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
