"""The environments a stack can run as, and the ports each one uses by default.

Ports differ per environment so that dev and staging run side by side on one machine.
"""

from __future__ import annotations

from typing import Final

from common.environments import ENVIRONMENTS, Environment
from ops.errors import OpsError

# Base ports for dev; staging adds 100 and prod 200 to every one of them.
_BASE_PORTS: Final = {
    "BACKEND_PORT": 8000,
    "LLM_PORT": 8001,
    "WHISPER_PORT": 50051,
    "WHISPER_METRICS_PORT": 9101,
    "WORKER_METRICS_PORT": 9102,
    "POSTGRES_PORT": 5433,
    "REDIS_PORT": 6380,
}
_OFFSETS: Final[dict[str, int]] = {"dev": 0, "staging": 100, "prod": 200}


def validate(env: str) -> Environment:
    """Return `env` when it names a known environment, else raise a clear error."""
    if env not in ENVIRONMENTS:
        raise OpsError(
            f"unknown environment {env!r}",
            f"use --env with one of: {', '.join(ENVIRONMENTS)}",
            code=2,
        )
    return env


def default_ports(env: str) -> dict[str, int]:
    offset = _OFFSETS[validate(env)]
    return {key: port + offset for key, port in _BASE_PORTS.items()}
