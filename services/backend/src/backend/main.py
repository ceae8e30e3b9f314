"""The FastAPI application: `create_app()` for tests and tools, `app` for uvicorn."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from grpc import aio
from redis.asyncio import Redis

from backend import __version__, tracing
from backend.api.routes import ask, exports, health, meetings, search
from backend.config import SERVICE_NAME, BackendSettings, get_settings
from backend.core.errors import install_error_handlers
from backend.db.read_pool import read_pool
from backend.services.meaning import QueryEmbedder
from backend.services.task_queue import make_client
from backend.web import install_web
from backend.web.auth import require_api_auth
from common import multiprocess, service_auth
from common.logging import configure_logging
from common.metrics import PrometheusMiddleware
from meetings.session import async_engine, async_sessions
from recordings import open_store

DESCRIPTION = """\
Upload a meeting recording, then poll it until `status` is `done`: the transcript, summary
and action items are filled in by the worker. Every `/api` route needs
`Authorization: Bearer <API_TOKEN>`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: BackendSettings = app.state.settings or get_settings()
    app.state.settings = settings
    if not logging.getLogger().handlers:
        # Worker processes spawned by uvicorn (BACKEND_WORKERS > 1) start unconfigured; a
        # process that already set up logging (__main__, pytest) keeps its handlers.
        configure_logging(SERVICE_NAME, settings.log_level, json_logs=settings.log_json)
    if settings.media_store == "local":
        settings.media_dir.mkdir(parents=True, exist_ok=True)
    # No connection yet: an unreachable object store shows in /health/ready and as 503s on
    # uploads, it does not stop the API from serving what is already stored.
    app.state.media = open_store(settings)
    engine = async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    app.state.engine = engine
    app.state.read_pool = read_pool(
        settings.database_url,
        min_size=min(2, settings.db_pool_size),
        max_size=settings.db_pool_size + settings.db_max_overflow,
    )
    # Not waiting for the connections: the API starts (and /health answers) while the
    # database is still coming up; /health/ready reports it.
    await app.state.read_pool.open(wait=False)
    app.state.sessions = async_sessions(engine)
    app.state.redis = Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        socket_connect_timeout=2,
        socket_timeout=2,
    )
    # Only ever sent to the llm service (embeddings, answers, its health).
    token = settings.service_token.get_secret_value()
    app.state.http = httpx.AsyncClient(
        timeout=2.0, headers={service_auth.HEADER: token} if token else None
    )
    app.state.embedder = QueryEmbedder(app.state.http, settings.llm_url)
    app.state.whisper_channel = aio.insecure_channel(settings.whisper_url)
    app.state.task_queue = make_client(settings.redis_url, timeout_s=settings.enqueue_timeout_s)
    # Everything allocated so far (modules, app, pools) lives as long as the process: move
    # it out of the collector's view so full collections stop re-scanning it under load.
    gc.freeze()
    try:
        yield
    finally:
        app.state.task_queue.close()
        await app.state.whisper_channel.close()
        await app.state.http.aclose()
        await app.state.redis.aclose()
        await app.state.read_pool.close()
        await engine.dispose()
        # A uvicorn worker that stops: its live gauges must stop counting (counters stay).
        multiprocess.mark_dead(os.getpid())


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    """Build the app; settings are read from the environment at startup when not given."""
    endpoint, environment = (
        (settings.otel_exporter_otlp_endpoint, settings.app_env)
        if settings is not None
        else tracing.endpoint_from_env()
    )
    prod = environment == "prod"
    app = FastAPI(
        title="Meeting Intelligence API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=tracing.TELEMETRY,
        # The interactive docs load Swagger UI and ReDoc from a CDN and map the whole API for
        # anyone: dev and staging only. prod serves neither, nor the schema.
        docs_url=None if prod else "/docs",
        redoc_url=None if prod else "/redoc",
        openapi_url=None if prod else "/openapi.json",
    )
    app.state.settings = settings
    tracing.instrument(endpoint, environment)
    app.add_middleware(PrometheusMiddleware, service=SERVICE_NAME)
    install_error_handlers(app)

    # Bearer token as before, or the web UI's session cookie (see backend/web/auth.py).
    for router in (meetings.router, exports.router, search.router, ask.router):
        app.include_router(router, dependencies=[Depends(require_api_auth)])
    app.include_router(health.router)
    install_web(app)
    return app


app = create_app()
