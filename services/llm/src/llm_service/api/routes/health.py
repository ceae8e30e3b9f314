"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from common.health import Check, run_checks
from common.metrics import render_latest
from llm_service.api.deps import EmbeddingsDep, SelectorDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the process serves HTTP. Says nothing about Ollama."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(selector: SelectorDep, embeddings: EmbeddingsDep) -> JSONResponse:
    """Ready when the configured engine can answer: 200, else 503 with what to do."""
    extractive = Check("extractive", selector.extractive.check, required=True)
    ollama = Check("ollama", selector.ollama.check, required=True, timeout=3.0)
    if selector.mode == "extractive":
        checks = [extractive]
    elif selector.mode == "ollama":
        checks = [ollama]
    elif selector.mode in ("local", "openai") and selector.chat is not None:
        # With LLM_FALLBACK the extractive engine covers for a model server that is down, so
        # the model's state is reported without gating readiness.
        model = Check(
            selector.chat.name, selector.chat.check, required=not selector.fallback, timeout=3.0
        )
        checks = [extractive, model] if selector.fallback else [model]
    else:
        # auto always has an engine; Ollama's state is reported but does not gate readiness.
        checks = [extractive, Check("ollama", selector.ollama.check, required=False, timeout=3.0)]

    async def embedding_model() -> str:
        if not embeddings.loaded:
            # Raises with what to do; a model pulled since start-up loads now (off the loop).
            await anyio.to_thread.run_sync(embeddings.load)
        return f"{embeddings.name}, {embeddings.dimensions} dimensions"

    # Search works without it (keyword only): reported, never gating.
    checks.append(Check("embeddings", embedding_model, required=False, timeout=10.0))
    report = await run_checks(checks)
    body = report.as_dict() | {"engine": selector.mode}
    return JSONResponse(body, status_code=200 if report.ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(content=body, media_type=content_type)
