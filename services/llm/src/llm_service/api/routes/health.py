"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from common.health import Check, run_checks
from common.metrics import render_latest
from llm_service.api.deps import SelectorDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the process serves HTTP. Says nothing about Ollama."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(selector: SelectorDep) -> JSONResponse:
    """Ready when the configured engine can answer: 200, else 503 with what to do."""
    extractive = Check("extractive", selector.extractive.check, required=True)
    ollama = Check("ollama", selector.ollama.check, required=True, timeout=3.0)
    if selector.mode == "extractive":
        checks = [extractive]
    elif selector.mode == "ollama":
        checks = [ollama]
    else:
        # auto always has an engine; Ollama's state is reported but does not gate readiness.
        checks = [extractive, Check("ollama", selector.ollama.check, required=False, timeout=3.0)]
    report = await run_checks(checks)
    body = report.as_dict() | {"engine": selector.mode}
    return JSONResponse(body, status_code=200 if report.ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(content=body, media_type=content_type)
