"""Typed settings of the llm service, read from the process environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from common.environments import DEV_PORTS
from common.settings import ServerSettings

SERVICE_NAME = "llm"

EngineChoice = Literal["auto", "local", "openai", "ollama", "extractive"]
LOCAL_MODEL = "local"
"""The model name sent to the stack's own llama.cpp server, which serves one model whatever
the name (llama.cpp ignores it); responses and /v1/engines name the GGUF file instead."""


class LLMSettings(ServerSettings):
    """Every key is read from the environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    llm_host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds to.")
    llm_port: int = Field(
        default=DEV_PORTS["LLM_PORT"], ge=1, le=65535, description="Port of the HTTP server."
    )
    llm_engine: EngineChoice = Field(
        default="auto",
        description="auto: Ollama when it answers and has the model, else the OpenAI-compatible "
        "server when OPENAI_BASE_URL is set, else extractive.",
    )
    llama_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(f"http://127.0.0.1:{DEV_PORTS['LLAMA_PORT']}"),
        description="The stack's llama.cpp server (LLM_ENGINE=local).",
    )
    llm_model_dir: str = Field(
        default=".models/dev/llm", description="Directory of the locked GGUF (named in replies)."
    )
    llama_port: int = Field(
        default=DEV_PORTS["LLAMA_PORT"], ge=1, le=65535, description="Port of llama.cpp's server."
    )
    llama_ctx: int = Field(
        default=8192, ge=1024, le=131_072, description="llama.cpp's context, in tokens."
    )
    llama_threads: int = Field(
        default=0, ge=0, le=256, description="CPU threads for llama.cpp; 0: one per core but one."
    )
    llama_parallel: int = Field(
        default=1, ge=1, le=16, description="Requests llama.cpp decodes at once (slots)."
    )
    openai_base_url: str = Field(
        default="", description="OpenAI-compatible API base URL (…/v1); empty: none."
    )
    openai_model: str = Field(default="", description="Model name sent to OPENAI_BASE_URL.")
    openai_api_key: SecretStr = Field(
        default=SecretStr(""), description="Bearer key for OPENAI_BASE_URL; empty: none sent."
    )
    openai_timeout: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds to wait for one chat completion."
    )
    openai_retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts after a failed or invalid reply."
    )
    llm_fallback: bool = Field(
        default=True,
        description="When the model engine fails or is too slow, answer with the extractive "
        "engine and say why (the reply's `note`) instead of an error.",
    )
    llm_deadline: float = Field(
        default=240.0,
        gt=0,
        le=86_400,
        description="Seconds one analysis by a model may take in all (every part and retry); "
        "keep it below the worker's LLM_TIMEOUT.",
    )
    embeddings_model_dir: str = Field(
        default=".models/dev/embeddings",
        description="Directory of the locked embedding model (ONNX + tokenizer.json).",
    )
    embeddings_threads: int = Field(
        default=1, ge=1, le=64, description="CPU threads per embedding call."
    )
    ollama_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:11434"), description="Base URL of the Ollama server."
    )
    ollama_model: str = Field(
        default="llama3.2:3b", min_length=1, description="Ollama model tag used for analysis."
    )
    ollama_timeout: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds to wait for one Ollama reply."
    )
    ollama_retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts after a failed or invalid Ollama reply."
    )
    llm_max_request_mb: float = Field(
        default=4,
        gt=0,
        le=256,
        description="Largest request body, in MB, refused with 413 before it is parsed. A "
        "transcript at LLM_MAX_CHARS is at most 1.2 MB of JSON even with every character "
        "escaped; the rest is room for embedding batches.",
    )
    llm_max_chars: int = Field(
        default=200_000, ge=1, description="Longest transcript accepted; longer ones get a 422."
    )
    llm_chunk_chars: int = Field(
        default=8_000, ge=200, description="Transcripts longer than this are chunked for Ollama."
    )

    @field_validator("openai_base_url")
    @classmethod
    def _optional_url(cls, value: str) -> str:
        if value:
            AnyHttpUrl(value)
        return value.rstrip("/")

    @property
    def ollama_base_url(self) -> str:
        return str(self.ollama_url).rstrip("/")

    @property
    def chat_base_url(self) -> str:
        """Where the OpenAI-compatible engine sends its requests: the stack's own llama.cpp
        server for LLM_ENGINE=local, else OPENAI_BASE_URL."""
        if self.llm_engine == "local":
            return f"{str(self.llama_url).rstrip('/')}/v1"
        return self.openai_base_url

    @property
    def chat_model(self) -> str:
        return LOCAL_MODEL if self.llm_engine == "local" else self.openai_model


@lru_cache
def get_settings() -> LLMSettings:
    """The process-wide settings; raises pydantic.ValidationError on bad config."""
    return LLMSettings()
