"""Liveness, readiness and Prometheus metrics (outside /api: no token needed; readiness
names what fails only to a caller with the token)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from backend.config import SERVICE_NAME
from backend.health_checks import (
    database_check,
    llm_check,
    media_check,
    redis_check,
    whisper_check,
)
from common.health import run_checks
from common.metrics import render_latest

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok", "service": SERVICE_NAME}


@router.get(
    "/health/ready",
    summary="Dependencies reachable (503 when a required one is down)",
    responses={503: {"description": "A required dependency is down"}},
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    report = await run_checks(
        [
            database_check(state.engine),
            redis_check(state.redis),
            whisper_check(state.whisper_channel),
            llm_check(state.http, state.settings.llm_url),
            media_check(state.media),
        ]
    )
    full = report.as_dict()
    if not _presents_api_token(request):
        # Probes get the verdict; why a dependency fails (host names, driver errors, paths)
        # is for the operator, who has the token.
        full = {
            "status": full["status"],
            "checks": {
                name: {"ok": check["ok"], "required": check["required"]}
                for name, check in full["checks"].items()
            },
            "detail": "send `Authorization: Bearer <API_TOKEN>` to see each check's details",
        }
    body: dict[str, Any] = {"service": SERVICE_NAME, **full}
    code = status.HTTP_200_OK if report.ok else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, code)


def _presents_api_token(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected: str = request.app.state.settings.api_token.get_secret_value()
    # Constant time, as for /api: the answer's timing must not reveal the token.
    return scheme.lower() == "bearer" and secrets.compare_digest(
        token.strip().encode(), expected.encode()
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
