"""POST /v1/analyze and GET /v1/engines."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from llm_service.api.deps import SelectorDep, SettingsDep
from llm_service.engines.base import EngineError
from llm_service.metrics import ANALYSES, ANALYSIS_SECONDS
from llm_service.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    AnswerRequest,
    AnswerResponse,
    EnginesResponse,
)

router = APIRouter(prefix="/v1", tags=["analysis"])


@router.post(
    "/analyze",
    responses={
        422: {"description": "Empty text, text over LLM_MAX_CHARS, or a malformed body."},
        502: {"description": "Ollama failed or replied with JSON that does not fit the schema."},
        503: {"description": "Ollama is unreachable or the model is not pulled."},
        504: {"description": "Ollama did not answer within OLLAMA_TIMEOUT."},
    },
)
async def analyze(
    body: AnalyzeRequest, settings: SettingsDep, selector: SelectorDep
) -> AnalyzeResponse:
    """Summary, action items and topics of a transcript."""
    if len(body.text) > settings.llm_max_chars:
        # The limit is configuration, not schema, so it is checked here; the error has the
        # same shape as FastAPI's own validation errors.
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("body", "text"),
                    "msg": (
                        f"text is {len(body.text)} characters, over the limit of "
                        f"{settings.llm_max_chars} (LLM_MAX_CHARS): send a shorter transcript "
                        f"or raise LLM_MAX_CHARS"
                    ),
                    "ctx": {"max_length": settings.llm_max_chars},
                }
            ]
        )
    start = time.perf_counter()
    try:
        result = await selector.analyze(
            body.text, language=body.language, reference_date=body.reference_date
        )
    except EngineError:
        ANALYSES.labels(selector.mode, "error").inc()
        raise
    ANALYSES.labels(result.engine, "fallback" if result.note else "ok").inc()
    ANALYSIS_SECONDS.labels(result.engine).observe(time.perf_counter() - start)
    return result


@router.get("/engines")
async def engines(selector: SelectorDep) -> EnginesResponse:
    """The configured engine mode, which engine would answer now, and each engine's state."""
    selected, statuses = await selector.statuses()
    return EnginesResponse(configured=selector.mode, selected=selected, engines=statuses)


@router.post(
    "/answer",
    responses={
        422: {"description": "An empty or over-long question, no passages, or too many."},
        502: {"description": "The model failed and LLM_FALLBACK=false."},
    },
)
async def answer(body: AnswerRequest, selector: SelectorDep) -> AnswerResponse:
    """Answer `question` from the numbered `passages` only, citing them; `answer` is null when
    no model is configured (extractive) or the passages do not hold the answer."""
    return await selector.answer(body.question, body.passages)
