"""The one typed schema of `.env.<env>`: every key, its type, default and meaning.

`inv env.setup` writes env files from it, `inv env.check` validates them against it, and
`.env.example` is generated from it (`inv env.example`; a test fails when it is stale).
Services read the same keys through their own settings classes, which they register under
the `mi.settings` entry-point group: their further keys are the optional tuning section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.environments import DEV_PORTS, Environment

if TYPE_CHECKING:
    from ops.environment import Environment as Env

Port = Annotated[int, Field(ge=1, le=65535)]

# Values that mean "nobody chose a secret here"; refused outside dev.
PLACEHOLDERS = frozenset({"change-me", "changeme", "secret", "password", "example", "todo", ""})
MIN_SECRET_LENGTH = 24


def secret(description: str) -> Any:
    """A generated secret: `env.setup` fills it, staging/prod refuse weak values."""
    return Field(
        default=SecretStr("change-me"), description=description, json_schema_extra={"secret": True}
    )


def section(name: str) -> dict[str, Any]:
    return {"section": name}


def host(description: str, starts_section: str) -> Any:
    """The address a part of the stack is reached at: the first key of its section."""
    return Field("127.0.0.1", description=description, json_schema_extra=section(starts_section))


class StackSettings(BaseSettings):
    """Every key of `.env.<env>`; the defaults are dev's (see `defaults_for`)."""

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False)

    # general
    app_env: Environment = Field(
        "dev",
        description="Which environment this file configures.",
        json_schema_extra=section("general"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of every service."
    )
    log_json: bool = Field(
        True, description="JSON log lines (true) or plain text for humans (false)."
    )

    # backend
    backend_host: str = host("Address the API listens on.", "backend API")
    backend_port: Port = Field(
        DEV_PORTS["BACKEND_PORT"],
        description="Port of the API (http://BACKEND_HOST:BACKEND_PORT/docs).",
    )
    api_token: SecretStr = secret("Bearer token for /api/*: `Authorization: Bearer $API_TOKEN`.")
    service_token: SecretStr = secret(
        "Service credential: whisper and llm answer only calls carrying it (x-service-token), "
        "which backend and worker send; staging and prod refuse to start without it "
        "(common.service_auth.REQUIRED_IN)."
    )
    media_store: Literal["local", "s3"] = Field(
        "local",
        description="Where recordings are stored: local (MEDIA_DIR, one machine) or s3 (a "
        "bucket of any S3-compatible store: the S3_* keys below).",
    )
    media_dir: str = Field(
        ".data/dev/media",
        description="Where uploaded recordings are stored (relative to the repo).",
    )
    max_upload_mb: int = Field(
        200, ge=1, description="Largest accepted upload, in MB; larger ones get 413."
    )

    # object store
    s3_endpoint_url: str = Field(
        "",
        description="S3 API URL of the store (https://s3.eu-west-1.amazonaws.com, "
        "https://minio.example:9000, https://storage.googleapis.com); empty: the stack's own "
        "(compose's `objectstore` service, on OBJECTSTORE_PORT).",
        json_schema_extra=section("object store (MEDIA_STORE=s3)"),
    )
    s3_bucket: str = Field(
        "mi-media",
        description="Bucket of the recordings; it must exist (the stack's own store makes it).",
    )
    s3_region: str = Field("us-east-1", description="Region the bucket is in (signing scope).")
    s3_access_key_id: str = Field(
        "mi-media", description="Access key ID for the store (the stack's own store: any name)."
    )
    s3_secret_access_key: SecretStr = secret("Secret of S3_ACCESS_KEY_ID.")
    s3_path_style: bool = Field(
        True,
        description="true: endpoint/bucket/key URLs (MinIO, Ceph, rclone, the stack's own); "
        "false: bucket.endpoint/key (AWS).",
    )
    s3_prefix: str = Field(
        "", description="Key prefix of the recordings, to share a bucket (e.g. meetings/)."
    )
    objectstore_port: Port = Field(
        DEV_PORTS["OBJECTSTORE_PORT"],
        description="Host port of the stack's own object store (compose dev and staging).",
    )

    # postgres
    postgres_host: str = host("Postgres address.", "postgres")
    postgres_port: Port = Field(
        DEV_PORTS["POSTGRES_PORT"],
        description="Postgres port (the local runtime starts its own server here).",
    )
    postgres_user: str = Field(
        "mi",
        description="The cluster's superuser (the local runtime's initdb, the compose image): "
        "creates the two roles below (infra/postgres/roles.psql), nothing connects as it.",
    )
    postgres_password: SecretStr = secret("Password of POSTGRES_USER.")
    postgres_owner_user: str = Field(
        "mi_owner",
        description="Role that owns the database and its tables: migrations, backup and "
        "restore connect as it (not a superuser).",
    )
    postgres_owner_password: SecretStr = secret("Password of POSTGRES_OWNER_USER.")
    postgres_app_user: str = Field(
        "mi_app",
        description="Role the services connect as: reads and writes rows, owns nothing, no DDL.",
    )
    postgres_app_password: SecretStr = secret("Password of POSTGRES_APP_USER.")
    postgres_app_statement_timeout: str = Field(
        "30s",
        pattern=r"^[1-9][0-9]*(ms|s|min)$",
        description="Longest statement the app role may run (Postgres units: ms, s, min). The "
        "API's and the worker's statements take well under a second; a runaway or injected "
        "query is cancelled instead of holding a connection and its locks.",
    )
    postgres_db: str = Field("meetings", description="Database name.")
    database_url: str = Field(
        "postgresql+psycopg://${POSTGRES_APP_USER}:${POSTGRES_APP_PASSWORD}@${POSTGRES_HOST}:${POSTGRES_PORT}/${POSTGRES_DB}",
        description="SQLAlchemy URL the services use (the app role); built from the keys above.",
    )
    database_owner_url: str = Field(
        "postgresql+psycopg://${POSTGRES_OWNER_USER}:${POSTGRES_OWNER_PASSWORD}@${POSTGRES_HOST}:${POSTGRES_PORT}/${POSTGRES_DB}",
        description="SQLAlchemy URL of the owner role: `inv db.*`, `inv backup*`, the migrate job.",
    )

    # redis
    redis_host: str = host("Redis address (Celery broker).", "redis")
    redis_port: Port = Field(DEV_PORTS["REDIS_PORT"], description="Redis port.")
    redis_password: SecretStr = secret("Redis password (requirepass).")
    redis_url: str = Field(
        "redis://:${REDIS_PASSWORD}@${REDIS_HOST}:${REDIS_PORT}/0",
        description="Redis URL; built from the REDIS_* keys above.",
    )

    # whisper
    whisper_host: str = host(
        "Address the speech-to-text gRPC server listens on.", "whisper (speech to text)"
    )
    whisper_port: Port = Field(
        DEV_PORTS["WHISPER_PORT"], description="gRPC port of the whisper service."
    )
    whisper_metrics_port: Port = Field(
        DEV_PORTS["WHISPER_METRICS_PORT"],
        description="Prometheus metrics port of the whisper service.",
    )
    whisper_url: str = Field(
        "${WHISPER_HOST}:${WHISPER_PORT}", description="gRPC target the worker and backend use."
    )
    whisper_engine: Literal["auto", "faster-whisper", "pocketsphinx"] = Field(
        "auto",
        description="auto: faster-whisper when WHISPER_MODEL_DIR holds a model, else pocketsphinx.",
    )
    whisper_model_dir: str = Field(
        ".models/dev/whisper",
        description="CTranslate2 whisper model dir, relative to the repo (`inv models.pull`).",
    )
    whisper_device: Literal["cpu", "cuda"] = Field(
        "cpu", description="cuda fails loudly when no GPU is present."
    )

    # llm
    llm_host: str = host("Address the analysis service listens on.", "llm (summary, action items)")
    llm_port: Port = Field(DEV_PORTS["LLM_PORT"], description="HTTP port of the llm service.")
    llm_url: str = Field(
        "http://${LLM_HOST}:${LLM_PORT}", description="URL the worker and backend use."
    )
    llm_engine: Literal["auto", "local", "openai", "ollama", "extractive"] = Field(
        "auto",
        description="auto: ollama when OLLAMA_URL answers, else the OpenAI-compatible server "
        "when OPENAI_BASE_URL is set, else the offline extractive engine; local: the stack runs "
        "llama.cpp with the GGUF models.lock pins; openai: OPENAI_BASE_URL.",
    )
    llama_port: Port = Field(
        DEV_PORTS["LLAMA_PORT"], description="Port of the local llama.cpp (LLM_ENGINE=local)."
    )
    llama_url: str = Field(
        "http://${LLM_HOST}:${LLAMA_PORT}", description="URL the llm service reaches llama.cpp at."
    )
    llm_model_dir: str = Field(
        ".models/dev/llm",
        description="Where the locked GGUF model lives, relative to the repo (`inv models.pull`).",
    )
    openai_base_url: str = Field(
        "",
        description="An OpenAI-compatible API (vLLM, llama.cpp, LM Studio, Ollama's /v1, a hosted "
        "one), e.g. http://127.0.0.1:8080/v1; empty: none.",
    )
    openai_model: str = Field("", description="Model name sent to OPENAI_BASE_URL.")
    openai_api_key: SecretStr = Field(
        default=SecretStr(""),
        description="API key for OPENAI_BASE_URL (empty when the server needs none).",
    )
    ollama_url: str = Field("http://127.0.0.1:11434", description="Ollama server.")
    ollama_model: str = Field(
        "llama3.2:3b", description="Ollama model (name:tag) used for analysis."
    )

    # search
    search_embeddings: bool = Field(
        True,
        description="Embed transcript chunks for search by meaning (hybrid search); false: "
        "keyword search only.",
        json_schema_extra=section("search"),
    )
    embeddings_model_dir: str = Field(
        ".models/dev/embeddings",
        description="Where the locked embedding model lives, relative to the repo.",
    )

    # models
    models_auto_pull: bool = Field(
        True,
        description="`inv up` pulls the env's locked models (whisper, the local LLM, embeddings) "
        "when missing (`inv up --offline` skips it once).",
        json_schema_extra=section("models"),
    )

    # worker
    worker_metrics_port: Port = Field(
        DEV_PORTS["WORKER_METRICS_PORT"],
        description="Prometheus metrics port of the worker (pipeline metrics, queue depth).",
        json_schema_extra=section("worker (meeting pipeline)"),
    )

    # backup
    backup_key: SecretStr = Field(
        default=SecretStr("change-me"),
        description="Signs this deployment's backups (HMAC-SHA256) and, with BACKUP_ENCRYPT, "
        "encrypts them; `inv backup.restore` and `backup.verify` refuse archives it did not "
        "sign. Keep a copy outside the deployment: encrypted backups are unreadable without it.",
        # Read on this host by `inv backup*` (and by the Kubernetes backup CronJob), never by a
        # compose service: no container of the stack gets it.
        json_schema_extra={"secret": True, "section": "backup", "containers": False},
    )
    backup_encrypt: bool = Field(
        False,
        description="Encrypt backup archives at rest (AES-256-GCM, key derived from BACKUP_KEY).",
    )

    # monitoring
    prometheus_port: Port = Field(
        DEV_PORTS["PROMETHEUS_PORT"],
        description="Prometheus's port (`inv up --monitoring`, compose's `monitoring` profile).",
        json_schema_extra=section("monitoring"),
    )
    flower_port: Port = Field(
        DEV_PORTS["FLOWER_PORT"],
        description="Flower's port, Celery's task monitor (`inv up --monitoring`).",
    )
    grafana_admin_password: SecretStr = Field(
        default=SecretStr("change-me"),
        description="Grafana's admin password (compose `monitoring` profile).",
        json_schema_extra={"secret": True},
    )

    @field_validator("ollama_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Validated, but kept as written: AnyHttpUrl would append a "/" to the value.
        AnyHttpUrl(value)
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (or be empty: the own store)")
        return value

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        from recordings.settings import BUCKET_NAME

        if not BUCKET_NAME.match(value):
            raise ValueError("3-63 lower-case letters, digits, dots and hyphens")
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not value.endswith("/"):
            raise ValueError("must end with / (e.g. meetings/)")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _optional_http_url(cls, value: str) -> str:
        if value:
            AnyHttpUrl(value)
        return value

    @field_validator("backend_host", "postgres_host", "redis_host", "whisper_host", "llm_host")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.\-:]+", value):
            raise ValueError(f"{value!r} is not a host name or address")
        return value


FORMER_DEFAULTS: dict[str, frozenset[str]] = {
    # Before the app role existed the services connected as the superuser; `env.setup`
    # replaces this value (a hand-written URL is kept, and `env.check` judges it).
    "DATABASE_URL": frozenset(
        {
            "postgresql+psycopg://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST}:"
            "${POSTGRES_PORT}/${POSTGRES_DB}"
        }
    ),
}
"""Generated values of older releases that `env.setup` updates like missing keys."""

# Each service registers its settings class under this entry-point group (in its own
# pyproject.toml): its keys that are not above are optional tuning knobs whose defaults live
# in the service (the single source), documented in .env.example. The services plug into the
# tooling; the tooling names none of them.
SETTINGS_ENTRY_POINTS = "mi.settings"
SERVICE_ORDER = ("backend", "worker", "whisper", "llm")


@dataclass(frozen=True)
class TuningKey:
    key: str
    service: str
    field: FieldInfo


def tuning_keys() -> dict[str, TuningKey]:
    """Optional keys the services read beyond the stack schema, by env var name."""
    from importlib.metadata import entry_points

    known = set(all_keys())
    found: dict[str, TuningKey] = {}
    registered = {ep.name: ep for ep in entry_points(group=SETTINGS_ENTRY_POINTS)}
    order = [*SERVICE_ORDER, *sorted(set(registered) - set(SERVICE_ORDER))]
    for service in (name for name in order if name in registered):
        cls = registered[service].load()
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            key = (alias if isinstance(alias, str) else prefix + field_name).upper()
            if key not in known and key not in found:
                found[key] = TuningKey(key, service, field)
    return found


def validate_tuning(spec: TuningKey, value: str) -> str | None:
    """None when `value` suits the service reading `spec.key`, else the reason it does not."""
    from pydantic import TypeAdapter, ValidationError

    # The field's type and constraints (ge, le, ...), without its model-only settings.
    annotation: Any = spec.field.annotation
    if spec.field.metadata:
        annotation = Annotated[(annotation, *spec.field.metadata)]
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors())
    return None


def all_keys() -> list[str]:
    return [name.upper() for name in StackSettings.model_fields]


def secret_keys() -> list[str]:
    """The secrets `inv env.setup` generates (see credential_keys for every credential)."""
    return [
        name.upper()
        for name, field in StackSettings.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
    ]


def credential_keys() -> set[str]:
    """Every key that holds a credential: the generated secrets, the ones a user brings
    (OPENAI_API_KEY) and the URLs built from a password. A process gets only those it reads."""
    keys = set()
    for name, field in StackSettings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr) or (isinstance(default, str) and "_PASSWORD}" in default):
            keys.add(name.upper())
    return keys


def container_secret_keys() -> list[str]:
    """The secrets the compose services read (every secret but the host-only ones)."""
    return [
        key
        for key in secret_keys()
        if StackSettings.model_fields[key.lower()].json_schema_extra.get("containers", True)  # type: ignore[union-attr]
    ]


def defaults_for(env: Env) -> dict[str, str]:
    """Every key's default for one environment, as env-file text values."""
    values: dict[str, str] = {}
    for name, field in StackSettings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, bool):
            default = str(default).lower()
        values[name.upper()] = str(default)
    values.update({key: str(port) for key, port in env.default_ports.items()})
    values["APP_ENV"] = env.name
    values["MEDIA_DIR"] = f".data/{env.name}/media"
    # Envs pin different models (models.lock): one directory each, so pulls never collide.
    values["WHISPER_MODEL_DIR"] = f".models/{env.name}/whisper"
    values["LLM_MODEL_DIR"] = f".models/{env.name}/llm"
    values["EMBEDDINGS_MODEL_DIR"] = f".models/{env.name}/embeddings"
    values["LOG_JSON"] = "false" if env.name == "dev" else "true"
    return values


def render_example() -> str:
    """The text of `.env.example`: every key, documented, with dev's defaults."""
    lines = [
        "# Every setting of the stack, with dev's defaults. Generated from",
        "# libs/ops/src/ops/env/schema.py by `uv run inv env.example`: do not edit by hand.",
        "# `uv run inv env.setup --env <env>` writes .env.<env> with real generated secrets.",
    ]
    from ops.environment import Environment as Env

    defaults = defaults_for(Env.parse("dev"))
    for name, field in StackSettings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "section" in extra:
            lines += ["", f"# --- {extra['section']} " + "-" * (60 - len(str(extra["section"])))]
        lines.append(f"# {field.description}")
        key = name.upper()
        value = "change-me" if extra.get("secret") else defaults[key]
        lines.append(f"{key}={value}")
    lines += [
        "",
        "# --- optional tuning " + "-" * 44,
        "# Read by one service each, with defaults that suit most installs. Uncomment to change;",
        "# `inv env.check` validates them against the service's own settings class.",
    ]
    service = ""
    for spec in tuning_keys().values():
        if spec.service != service:
            service = spec.service
            lines += ["", f"# {service}"]
        if spec.field.description:
            lines.append(f"# {spec.field.description}")
        default = spec.field.default
        shown = (
            ""
            if default is None
            else str(default).lower()
            if isinstance(default, bool)
            else default
        )
        lines.append(f"# {spec.key}={shown}")
    return "\n".join(lines) + "\n"
