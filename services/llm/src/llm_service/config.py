"""Typed settings of the llm service, read from the process environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AnyHttpUrl, Field
from pydantic_settings import SettingsConfigDict

from common.environments import DEV_PORTS
from common.settings import ServiceSettings

SERVICE_NAME = "llm"

EngineChoice = Literal["auto", "ollama", "extractive"]


class LLMSettings(ServiceSettings):
    """Every key is read from the environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    llm_host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds to.")
    llm_port: int = Field(
        default=DEV_PORTS["LLM_PORT"], ge=1, le=65535, description="Port of the HTTP server."
    )
    llm_engine: EngineChoice = Field(
        default="auto",
        description="auto: Ollama when it answers and has the model, else extractive.",
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
    llm_max_chars: int = Field(
        default=200_000, ge=1, description="Longest transcript accepted; longer ones get a 422."
    )
    llm_chunk_chars: int = Field(
        default=8_000, ge=200, description="Transcripts longer than this are chunked for Ollama."
    )

    @property
    def ollama_base_url(self) -> str:
        return str(self.ollama_url).rstrip("/")


@lru_cache
def get_settings() -> LLMSettings:
    """The process-wide settings; raises pydantic.ValidationError on bad config."""
    return LLMSettings()
