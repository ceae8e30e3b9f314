"""The environments a stack runs as, and the ports each one listens on by default.

Import-light, so CLIs can validate names quickly. Every other place that needs an
environment name or a default port (service settings, the env schema, the compose checks)
reads it from here.
"""

from __future__ import annotations

from typing import Final, Literal

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = ("dev", "staging", "prod")

DEV_PORTS: Final[dict[str, int]] = {
    "BACKEND_PORT": 8000,
    "LLM_PORT": 8001,
    "LLAMA_PORT": 8002,
    "WHISPER_PORT": 50051,
    "WHISPER_METRICS_PORT": 9101,
    "WORKER_METRICS_PORT": 9102,
    "POSTGRES_PORT": 5433,
    "REDIS_PORT": 6380,
    "OBJECTSTORE_PORT": 9010,
    "PROMETHEUS_PORT": 9090,
    "FLOWER_PORT": 5555,
}
"""dev's ports, which are also every service's built-in default."""

MONITORING_PORTS: Final[tuple[str, ...]] = ("PROMETHEUS_PORT", "FLOWER_PORT")
"""Ports only the monitoring services listen on (`inv up --monitoring`)."""

# Ports differ per environment so that dev and staging run side by side on one machine.
_OFFSETS: Final[dict[Environment, int]] = {"dev": 0, "staging": 100, "prod": 200}


def default_ports(env: Environment) -> dict[str, int]:
    """The ports `env` uses unless its env file says otherwise."""
    return {key: port + _OFFSETS[env] for key, port in DEV_PORTS.items()}
