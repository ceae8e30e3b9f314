"""The backend's typed settings, read from the process environment (see `.env.<env>`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator

from common.database import sqlalchemy_url
from common.environments import DEV_PORTS
from common.settings import ServiceSettings
from recordings import MediaSettings

SERVICE_NAME = "backend"
MEGABYTE = 1024 * 1024


class BackendSettings(ServiceSettings, MediaSettings):
    """Every key the API process reads. Field names map to upper-case env vars; the recordings
    store's keys (MEDIA_STORE, MEDIA_DIR, S3_*) come from MediaSettings."""

    backend_host: str = Field("127.0.0.1", description="Interface uvicorn binds to.")
    backend_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        DEV_PORTS["BACKEND_PORT"], description="Port uvicorn listens on."
    )
    backend_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        1, description="Uvicorn worker processes (1 in dev; about one per core in prod)."
    )
    database_url: str = Field(
        description="SQLAlchemy URL of the Postgres database (postgresql+psycopg://...)."
    )
    redis_url: str = Field(description="Redis URL: the Celery broker (redis://host:port/0).")
    api_token: SecretStr = Field(
        description="Bearer token every /api request must carry (at least 16 characters)."
    )
    max_upload_mb: Annotated[int, Field(ge=1, le=10_240)] = Field(
        200, description="Largest accepted upload in MiB; bigger uploads get 413."
    )
    whisper_url: str = Field(
        f"127.0.0.1:{DEV_PORTS['WHISPER_PORT']}",
        description="gRPC target of the whisper service (host:port).",
    )
    llm_url: str = Field(
        f"http://127.0.0.1:{DEV_PORTS['LLM_PORT']}", description="Base URL of the llm service."
    )
    ask_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        120.0, description="How long /api/v1/ask waits for the LLM's answer."
    )
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = Field(
        10, description="Database connections kept open per worker process."
    )
    db_max_overflow: Annotated[int, Field(ge=0, le=200)] = Field(
        10, description="Extra database connections allowed under burst load, per process."
    )
    redis_pool_size: Annotated[int, Field(ge=1, le=1000)] = Field(
        20, description="Redis connections per worker process (health checks, counters)."
    )
    enqueue_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(
        5.0, description="How long an upload waits for the broker before answering 503."
    )
    web_session_seconds: Annotated[int, Field(ge=1, le=30 * 24 * 3600)] = Field(
        8 * 3600,
        description="How long a web UI sign-in lasts before the browser must sign in again.",
    )

    @field_validator("api_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (run `inv env.setup` to generate one)")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        return sqlalchemy_url(value)  # search needs Postgres

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MEGABYTE

    @property
    def session_cookie_secure(self) -> bool:
        """The web UI's session cookie travels over HTTPS only, except in dev (plain http)."""
        return self.app_env != "dev"


@lru_cache
def get_settings() -> BackendSettings:
    """The process-wide settings; raises pydantic.ValidationError on bad config."""
    return BackendSettings()  # type: ignore[call-arg]  # required keys come from the environment
