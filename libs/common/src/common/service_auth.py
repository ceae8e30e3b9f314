"""The service credential: a token shared by the stack's services, so that whisper (gRPC) and
llm (HTTP) answer only the backend and the worker.

One token (SERVICE_TOKEN) rather than mTLS: the services already share secrets through the env
file, a token rotates with `inv env.setup --force`, and it passes through any proxy. It travels
in gRPC metadata and an HTTP header of the same name, is compared in constant time, and is
required in the environments named here; dev uses it when it is set (`inv env.setup` always
sets it), so a missing client-side token shows up in dev first.
"""

from __future__ import annotations

import hmac
from typing import Final

from common.environments import Environment

HEADER: Final = "x-service-token"
"""HTTP header and gRPC metadata key (gRPC wants lower case) carrying the token."""

REQUIRED_IN: Final[frozenset[Environment]] = frozenset({"staging", "prod"})
"""Environments whose whisper and llm refuse to start without a token."""

OPEN_PATHS: Final = frozenset({"/health", "/health/ready", "/metrics"})
"""HTTP paths answered without it: probes (`inv health`, compose, Kubernetes) and Prometheus
carry no credential, and no answer there holds meeting data."""


def matches(expected: str, presented: str | None) -> bool:
    """Whether `presented` is the token, in time independent of where they differ."""
    if not expected or presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def missing_token_problem(app_env: str, token: str) -> str | None:
    """Why a server's settings are unusable (no token where one is required), else None."""
    if not token and app_env in REQUIRED_IN:
        return (
            f"SERVICE_TOKEN is not set: {app_env} requires the service credential "
            "(`uv run inv env.setup --env <env>` generates it)"
        )
    return None
