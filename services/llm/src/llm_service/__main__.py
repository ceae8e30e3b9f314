"""`python -m llm_service`: serve the API with uvicorn on LLM_HOST:LLM_PORT.

Exit codes (common.entrypoint): 0 after a clean shutdown, 2 for bad configuration, 1 when
the port cannot be bound. On SIGTERM or SIGINT uvicorn stops accepting connections and lets
running requests finish (up to 30 s) first.
"""

from __future__ import annotations

import sys

from common import entrypoint
from llm_service.config import SERVICE_NAME, LLMSettings, get_settings


def serve(settings: LLMSettings) -> int:
    import uvicorn

    from llm_service.main import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.llm_host,
            port=settings.llm_port,
            log_config=None,  # keep the format the entrypoint configured
            timeout_graceful_shutdown=30,
        )
    )
    entrypoint.exit_0_on_sigterm()
    server.run()
    # uvicorn returns without raising when it could not bind; say so with the exit code.
    return 0 if server.started else 1


def main() -> int:
    return entrypoint.run(SERVICE_NAME, get_settings, serve)


if __name__ == "__main__":
    sys.exit(main())
