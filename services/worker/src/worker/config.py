"""The worker's typed settings, read from the process environment (see `.env.<env>`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from common.database import sqlalchemy_url
from common.environments import DEV_PORTS
from common.settings import ServiceSettings
from meetings.pipeline import ALL_QUEUES
from recordings import MediaSettings

SERVICE_NAME = "worker"

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class WorkerSettings(ServiceSettings, MediaSettings):
    """Every key the worker reads. Field names map to upper-case env vars; the recordings
    store's keys (MEDIA_STORE, MEDIA_DIR, S3_*) come from MediaSettings."""

    database_url: str = Field(description="SQLAlchemy URL of the Postgres database.")
    redis_url: str = Field(description="Redis URL of the Celery broker.")
    whisper_url: str = Field(
        f"127.0.0.1:{DEV_PORTS['WHISPER_PORT']}", description="gRPC target of the whisper service."
    )
    llm_url: str = Field(
        f"http://127.0.0.1:{DEV_PORTS['LLM_PORT']}", description="Base URL of the llm service."
    )
    worker_scratch_dir: Path | None = Field(
        None,
        description="Where a recording from an object store is downloaded while it is "
        "transcribed (deleted after); unset means the system's temporary directory.",
    )

    worker_queues: str = Field(
        ",".join(ALL_QUEUES),
        description="Comma-separated queues this worker consumes (pipeline,transcribe,analyze).",
    )
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] | None = Field(
        None, description="Pool processes; unset means one per CPU core."
    )
    worker_soft_time_limit: PositiveSeconds = Field(
        1800, description="Seconds a step may run before it is stopped and the meeting failed."
    )
    worker_time_limit: PositiveSeconds = Field(
        1860, description="Hard limit: the pool process is killed after this many seconds."
    )
    worker_visibility_timeout: PositiveSeconds = Field(
        2400,
        description=(
            "Seconds before Redis hands an unacknowledged task to another worker (recovery "
            "time after a worker is killed); must exceed the hard time limit and max backoff."
        ),
    )
    worker_restore_interval: PositiveSeconds = Field(
        10, description="How often a worker looks for tasks whose visibility timeout expired."
    )
    worker_max_retries: Annotated[int, Field(ge=0, le=50)] = Field(
        5, description="Retries of a step after whisper/llm/database are unreachable."
    )
    worker_retry_backoff: PositiveSeconds = Field(
        2, description="First retry delay in seconds; doubles on every retry."
    )
    worker_retry_backoff_max: PositiveSeconds = Field(
        300, description="Upper bound of a single retry delay in seconds."
    )
    worker_max_deliveries: Annotated[int, Field(ge=1, le=100)] = Field(
        3,
        description=(
            "Times one task message may be delivered (a worker crash or kill redelivers it) "
            "before the meeting is failed instead of crashing workers forever."
        ),
    )
    worker_sweep_interval: PositiveSeconds = Field(
        60,
        description="How often the workers look for meetings whose task was lost (a crash "
        "between upload and enqueue, Redis data lost, a restore) and queue them again.",
    )
    worker_sweep_stale_after: PositiveSeconds = Field(
        300,
        description="A meeting in progress is queued again when nothing touched it for this "
        "many seconds, no task message for it is in Redis and no running step holds it.",
    )
    worker_soft_shutdown_timeout: Annotated[float, Field(ge=0, le=86_400)] = Field(
        30,
        description="Cold shutdown (SIGQUIT, a second Ctrl+C): seconds the running tasks get "
        "to finish before they are handed back to Redis. SIGTERM always lets them finish.",
    )
    whisper_timeout: PositiveSeconds = Field(
        1500, description="Deadline in seconds for one transcription call."
    )
    whisper_retry_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        5, description="Quick reconnect attempts per transcription call while whisper restarts."
    )
    llm_timeout: PositiveSeconds = Field(300, description="Seconds to wait for one analysis.")
    search_embeddings: bool = Field(
        True, description="Embed transcript chunks for search by meaning after each meeting."
    )

    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="Interface the worker's Prometheus metrics server binds to (0.0.0.0 in "
        "containers).",
    )
    worker_metrics_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        DEV_PORTS["WORKER_METRICS_PORT"],
        description="Prometheus metrics port of the worker: its main process serves the "
        "metrics of every pool process plus queue depth read from Redis and Postgres.",
    )
    backup_status_dir: Path | None = Field(
        None,
        description="Where `inv backup` records its last success (backups/status/<env>): the "
        "worker exports that record and the free space of its filesystem. Unset: backups "
        "are not monitored.",
    )

    @field_validator("database_url")
    @classmethod
    def _psycopg(cls, value: str) -> str:
        return sqlalchemy_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        queues = [q.strip() for q in value.split(",") if q.strip()]
        unknown = sorted(set(queues) - set(ALL_QUEUES))
        if not queues or unknown:
            raise ValueError(f"unknown queue(s) {unknown}; choose from {', '.join(ALL_QUEUES)}")
        return ",".join(queues)

    @model_validator(mode="after")
    def _limits_are_consistent(self) -> Self:
        if self.worker_soft_time_limit >= self.worker_time_limit:
            raise ValueError("WORKER_SOFT_TIME_LIMIT must be below WORKER_TIME_LIMIT")
        # A message still running (or waiting for its retry countdown) when the visibility
        # timeout passes is handed to a second worker: duplicate work.
        needed = max(self.worker_time_limit, self.worker_retry_backoff_max)
        if self.worker_visibility_timeout <= needed:
            raise ValueError(
                f"WORKER_VISIBILITY_TIMEOUT ({self.worker_visibility_timeout:g}s) must exceed "
                f"WORKER_TIME_LIMIT and WORKER_RETRY_BACKOFF_MAX ({needed:g}s)"
            )
        return self

    @property
    def queues(self) -> list[str]:
        return self.worker_queues.split(",")


@lru_cache
def get_settings() -> WorkerSettings:
    """The process-wide settings; raises pydantic.ValidationError on bad config."""
    return WorkerSettings()  # type: ignore[call-arg]  # required keys come from the environment
