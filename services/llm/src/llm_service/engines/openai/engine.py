"""Analysis and answers by a model behind an OpenAI-compatible API (map-reduce: `engines.chat`).

Two engines share it: `openai` (OPENAI_BASE_URL, any server) and `local` (the stack's own
llama.cpp server with the GGUF models.lock pins).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from pydantic import BaseModel

from llm_service.engines import chat
from llm_service.engines.base import EngineUnavailableError
from llm_service.engines.ollama.replies import ModelAnswer
from llm_service.engines.openai.client import OpenAIClient
from llm_service.schemas import AnalyzeResponse, Passage

ReplyT = TypeVar("ReplyT", bound=BaseModel)


class OpenAIEngine:
    def __init__(
        self,
        client: OpenAIClient,
        model: str,
        chunk_chars: int,
        *,
        name: str = "openai",
        shown_model: str | None = None,
        check_model: bool = True,
    ) -> None:
        self.client = client
        self.name = name
        self.request_model = model
        self.model = shown_model or model
        self.chunk_chars = chunk_chars
        # The local server serves one model whatever it is called: no name to look up.
        self.check_model = check_model

    async def check(self, timeout: float = 2.0) -> str:
        if not self.client.base_url:
            raise EngineUnavailableError(
                "no OpenAI-compatible server is configured: set OPENAI_BASE_URL and OPENAI_MODEL"
            )
        models = await self.client.list_models(timeout=timeout)
        if self.check_model and models and self.request_model not in models:
            raise EngineUnavailableError(
                f"{self.client.base_url} does not serve {self.request_model!r} (it lists "
                f"{', '.join(models[:5])}): set OPENAI_MODEL to one of them"
            )
        return f"{self.model} at {self.client.base_url} ({self.client.mode})"

    async def _chat(self, messages: list[dict[str, str]], reply_model: type[ReplyT]) -> ReplyT:
        return await self.client.chat(
            model=self.request_model, messages=messages, reply_model=reply_model
        )

    async def analyze(
        self, text: str, *, language: str | None = None, reference_date: dt.date | None = None
    ) -> AnalyzeResponse:
        return await chat.analyze_in_parts(
            self._chat,
            text,
            chunk_chars=self.chunk_chars,
            language=language,
            reference_date=reference_date,
            engine=self.name,
            model=self.model,
        )

    async def answer(self, question: str, passages: list[Passage]) -> ModelAnswer:
        return await chat.answer(self._chat, question, passages)
