"""Base class for every service's typed settings, and how a service reports bad ones.

Services read their configuration from the process environment only: the local runtime and
compose both export the keys of `.env.<env>`, so no service parses `.env` files itself.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.environments import ENVIRONMENTS, Environment

__all__ = [
    "CONFIG_ERROR_EXIT",
    "ENVIRONMENTS",
    "Environment",
    "ServerSettings",
    "ServiceSettings",
    "describe_config_error",
    "report_config_error",
]

CONFIG_ERROR_EXIT = 2
"""Exit status of a service that refuses its configuration (supervisors do not retry it)."""

# A rejected value is echoed to help spot typos, except where it may carry a credential.
_NEVER_ECHOED = ("TOKEN", "PASSWORD", "SECRET", "KEY", "URL")


class ServiceSettings(BaseSettings):
    """Settings shared by every service; subclasses add their own keys."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: Environment = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="Every service: OTLP/gRPC collector traces are sent to "
        "(http://host:4317). Unset: tracing is off and costs nothing.",
    )

    service_token: SecretStr = Field(
        default=SecretStr(""),
        description="The service credential: whisper and llm require it of every call but "
        "health and metrics (required in staging and prod); backend and worker send it.",
    )

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        # Compose passes "${OTEL_EXPORTER_OTLP_ENDPOINT:-}": an empty value means off.
        return value.strip() or None if value is not None else None


class ServerSettings(ServiceSettings):
    """Settings of a service the others call (whisper, llm): it refuses to start without the
    service credential where the environment requires one (common.service_auth)."""

    @model_validator(mode="after")
    def _credential_where_required(self) -> ServerSettings:
        from common import service_auth

        problem = service_auth.missing_token_problem(
            self.app_env, self.service_token.get_secret_value()
        )
        if problem:
            raise ValueError(problem)
        return self


def describe_config_error(exc: ValidationError) -> str:
    """One line naming every bad key as the user wrote it (the env var) and what is wrong."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]).upper()
        if not key:  # a check across several keys (a model validator) names them itself
            problems.append(error["msg"].removeprefix("Value error, "))
        elif error["type"] == "missing":
            problems.append(f"{key} is not set")
        else:
            got = error.get("input")
            echo = isinstance(got, str | int | float) and not any(w in key for w in _NEVER_ECHOED)
            shown = f" (got {got!r})" if echo else ""
            problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}{shown}")
    return "; ".join(problems)


def report_config_error(service: str, exc: ValidationError) -> int:
    """Print the one line a human reads when `service` refuses its settings; the exit status."""
    sys.stderr.write(f"{service}: invalid configuration: {describe_config_error(exc)}\n")
    return CONFIG_ERROR_EXIT
