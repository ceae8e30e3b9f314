"""What every analysis engine provides, and the failures the HTTP layer turns into replies."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from llm_service.schemas import AnalyzeResponse


class Engine(Protocol):
    name: str
    model: str

    async def analyze(
        self, text: str, *, language: str | None = None, reference_date: dt.date | None = None
    ) -> AnalyzeResponse: ...

    async def check(self) -> str:
        """Raise EngineError when the engine cannot answer now; return a short detail."""
        ...


class EngineError(Exception):
    """An engine failed; the message says what happened and what to do about it."""

    status_code = 502


class EngineUnavailableError(EngineError):
    """The engine cannot be reached or is not set up (server down, model not pulled)."""

    status_code = 503


class EngineTimeoutError(EngineError):
    status_code = 504


class InvalidModelReplyError(EngineError):
    """The model answered, but not with the JSON the schema asks for."""

    status_code = 502
