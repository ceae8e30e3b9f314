"""The FastAPI application: `create_app(settings)` builds it; `python -m llm_service` serves it.

For other ASGI servers: `uvicorn --factory llm_service.main:create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from common import tracing
from common.metrics import PrometheusMiddleware
from llm_service.api.routes import analysis, embeddings, health
from llm_service.config import SERVICE_NAME, LLMSettings, get_settings
from llm_service.embeddings import EmbeddingModel, EmbeddingsUnavailableError
from llm_service.engines.base import EngineError
from llm_service.engines.extractive import ExtractiveEngine
from llm_service.engines.ollama import OllamaClient, OllamaEngine
from llm_service.engines.openai import OpenAIClient, OpenAIEngine
from llm_service.engines.selection import EngineSelector
from llm_service.guards import BodyLimit, ServiceTokenGuard

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("mi-llm")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"


async def _engine_error(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, EngineError) else 500
    return JSONResponse({"detail": str(exc)}, status_code=status)


def chat_engine(settings: LLMSettings, http: httpx.AsyncClient, backoff: float) -> OpenAIEngine:
    """The OpenAI-compatible engine: the stack's llama.cpp (local) or OPENAI_BASE_URL."""
    local = settings.llm_engine == "local"
    client = OpenAIClient(
        settings.chat_base_url,
        api_key="" if local else settings.openai_api_key.get_secret_value(),
        timeout=settings.openai_timeout,
        retries=settings.openai_retries,
        http=http,
        backoff=backoff,
    )
    ggufs = sorted(Path(settings.llm_model_dir).glob("*.gguf")) if local else []
    return OpenAIEngine(
        client,
        settings.chat_model,
        settings.llm_chunk_chars,
        name="local" if local else "openai",
        shown_model=ggufs[0].stem if ggufs else None,
        check_model=not local,
    )


def create_app(
    settings: LLMSettings | None = None, *, ollama_backoff: float = 0.5, probe_ttl: float = 15.0
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One connection pool for the whole process; closed on shutdown.
        async with httpx.AsyncClient() as http:
            client = OllamaClient(
                settings.ollama_base_url,
                timeout=settings.ollama_timeout,
                retries=settings.ollama_retries,
                http=http,
                backoff=ollama_backoff,
            )
            app.state.settings = settings
            app.state.selector = EngineSelector(
                settings.llm_engine,
                ExtractiveEngine(),
                OllamaEngine(client, settings.ollama_model, settings.llm_chunk_chars),
                chat_engine(settings, http, ollama_backoff),
                ttl=probe_ttl,
                fallback=settings.llm_fallback,
                deadline=settings.llm_deadline,
            )
            app.state.embeddings = EmbeddingModel(
                Path(settings.embeddings_model_dir), threads=settings.embeddings_threads
            )
            try:
                app.state.embeddings.load()  # at start-up, not inside the first request
            except EmbeddingsUnavailableError as exc:
                log.warning("%s", exc)
            yield

    prod = settings.app_env == "prod"
    app = FastAPI(
        title="llm service",
        summary="Summary, action items and topics of meeting transcripts.",
        version=_version(),
        lifespan=lifespan,
        telemetry=TelemetryConfig(exclude=tracing.untraced, metrics=False, logs=False),
        # Interactive docs in dev and staging (behind the service credential); none in prod.
        docs_url=None if prod else "/docs",
        redoc_url=None if prod else "/redoc",
        openapi_url=None if prod else "/openapi.json",
    )
    # FastAPI traces each request itself once a tracer provider is installed.
    tracing.setup(SERVICE_NAME, settings.otel_exporter_otlp_endpoint, settings.app_env)
    app.add_middleware(PrometheusMiddleware, service=SERVICE_NAME)
    # Added last, so they run first: the credential, then the size, then everything else.
    app.add_middleware(BodyLimit, max_bytes=int(settings.llm_max_request_mb * 1024 * 1024))
    token = settings.service_token.get_secret_value()
    if token:
        app.add_middleware(ServiceTokenGuard, token=token)
    app.add_exception_handler(EngineError, _engine_error)
    app.include_router(analysis.router)
    app.include_router(embeddings.router)
    app.include_router(health.router)
    return app
