"""Base class for every service's typed settings.

Services read their configuration from the process environment only: the local runtime and
compose both export the keys of `.env.<env>`, so no service parses `.env` files itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.environments import ENVIRONMENTS, Environment

__all__ = ["ENVIRONMENTS", "Environment", "ServiceSettings"]


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

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        # Compose passes "${OTEL_EXPORTER_OTLP_ENDPOINT:-}": an empty value means off.
        return value.strip() or None if value is not None else None
