"""`python -m llm_service`: serve the API with uvicorn on LLM_HOST:LLM_PORT.

Exits 2 with one line on stderr when the configuration is invalid. uvicorn handles SIGTERM
and SIGINT: it stops accepting connections and lets running requests finish.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from common.logging import configure_logging
from llm_service.config import LLMSettings, describe_validation_error
from llm_service.main import SERVICE, create_app


def main() -> int:
    try:
        settings = LLMSettings()
    except ValidationError as exc:
        sys.stderr.write(f"llm: invalid configuration: {describe_validation_error(exc)}\n")
        return 2
    configure_logging(SERVICE, settings.log_level, json_logs=settings.log_json)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.llm_host,
            port=settings.llm_port,
            log_config=None,  # keep the JSON/plain format configured above
            timeout_graceful_shutdown=30,
        )
    )
    server.run()
    # uvicorn returns without raising when it could not bind; say so with the exit code.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
