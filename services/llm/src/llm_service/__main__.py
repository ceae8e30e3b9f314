"""`python -m llm_service`: serve the API with uvicorn on LLM_HOST:LLM_PORT.

Exits 2 with one line on stderr when the configuration is invalid. On SIGTERM or SIGINT,
uvicorn stops accepting connections, lets running requests finish (up to 30 s), runs the
shutdown hooks and re-raises the signal, which the handler installed here turns into exit
status 0: a requested stop is not a crash to supervisord or Docker.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from pydantic import ValidationError

from common.settings import report_config_error
from llm_service.config import SERVICE_NAME, get_settings


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        return report_config_error(SERVICE_NAME, exc)
    # Imported only once the configuration is known good: a bad one fails fast.
    import uvicorn

    from common.logging import configure_logging
    from llm_service.main import create_app

    configure_logging(SERVICE_NAME, settings.log_level, json_logs=settings.log_json)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.llm_host,
            port=settings.llm_port,
            log_config=None,  # keep the JSON/plain format configured above
            timeout_graceful_shutdown=30,
        )
    )
    # uvicorn restores this handler after its graceful shutdown, then re-raises SIGTERM.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    server.run()
    # uvicorn returns without raising when it could not bind; say so with the exit code.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
