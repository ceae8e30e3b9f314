"""The llm service as the pipeline sees it: a transcript in, an analysis out.

Maps the client's errors onto the pipeline's, like `transcriber.py`: "unavailable" is
transient (the task retries later), "rejected" is permanent (the meeting fails with why).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from llm_service.client import (
    AnalysisRejectedError,
    EmbeddingsUnavailableError,
    LLMClient,
    LLMUnavailableError,
    TranscriptTooLongError,
)
from llm_service.schemas import AnalyzeResponse, EmbedResponse
from worker import long_transcripts
from worker.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


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
        def one(part: str) -> AnalyzeResponse:
            try:
                return self.client.analyze(part, language=language, reference_date=reference_date)
            except LLMUnavailableError as exc:
                raise TransientError(str(exc)) from exc
            except TranscriptTooLongError:
                raise
            except AnalysisRejectedError as exc:
                raise PermanentError(str(exc)) from exc

        try:
            return one(text)
        except TranscriptTooLongError as exc:
            limit = exc.max_chars
        # Longer than the llm takes: in parts, merged (see long_transcripts.py).
        parts = long_transcripts.split(text, limit)
        logger.info("transcript of %d characters analysed in %d parts", len(text), len(parts))
        try:
            analyses = [one(part) for part in parts]
            return long_transcripts.merge(
                analyses,
                summarize=lambda summaries: (
                    one(summaries).summary if len(summaries) <= limit else summaries
                ),
            )
        except TranscriptTooLongError as exc:  # the limit shrank between two requests
            raise TransientError(f"{exc}; the llm's limit changed, trying again") from exc

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
