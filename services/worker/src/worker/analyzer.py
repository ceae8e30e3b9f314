"""The llm service as the pipeline sees it: a transcript in, an analysis out.

Maps the client's errors onto the pipeline's, like `transcriber.py`: "unavailable" is
transient (the task retries later), "rejected" is permanent (the meeting fails with why).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from llm_service.client import (
    AnalysisRejectedError,
    EmbeddingsUnavailableError,
    LLMClient,
    LLMUnavailableError,
)
from llm_service.schemas import AnalyzeResponse, EmbedResponse
from worker.errors import PermanentError, TransientError


class EmbeddingsMissingError(PermanentError):
    """The llm service has no embedding model; the meeting stays keyword-searchable."""


class Analyzer(Protocol):
    def analyze(
        self, text: str, *, language: str | None, reference_date: dt.date | None
    ) -> AnalyzeResponse: ...

    def embed(self, texts: list[str]) -> EmbedResponse: ...

    def close(self) -> None: ...


class LLMAnalyzer:
    def __init__(self, base_url: str, *, timeout: float, token: str = "") -> None:
        self.client = LLMClient(base_url, timeout=timeout, token=token)

    def analyze(
        self, text: str, *, language: str | None, reference_date: dt.date | None
    ) -> AnalyzeResponse:
        try:
            return self.client.analyze(text, language=language, reference_date=reference_date)
        except LLMUnavailableError as exc:
            raise TransientError(str(exc)) from exc
        except AnalysisRejectedError as exc:
            raise PermanentError(str(exc)) from exc

    def embed(self, texts: list[str]) -> EmbedResponse:
        try:
            return self.client.embed(texts)
        except EmbeddingsUnavailableError as exc:
            raise EmbeddingsMissingError(str(exc)) from exc
        except LLMUnavailableError as exc:
            raise TransientError(str(exc)) from exc
        except AnalysisRejectedError as exc:
            raise PermanentError(str(exc)) from exc

    def close(self) -> None:
        self.client.close()
