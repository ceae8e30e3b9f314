"""Analysis by an Ollama model over its native /api/chat (map-reduce: `engines.chat`)."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from pydantic import BaseModel

from llm_service.engines import chat
from llm_service.engines.base import EngineUnavailableError
from llm_service.engines.ollama.client import OllamaClient, model_present, pull_hint
from llm_service.engines.ollama.replies import ModelAnswer
from llm_service.schemas import AnalyzeResponse, Passage

ReplyT = TypeVar("ReplyT", bound=BaseModel)

# Ollama silently cuts a prompt longer than the model context (num_ctx), so the context is
# sized for the chunk: ~3 characters per token, plus room for instructions and the reply.
_CHARS_PER_TOKEN = 3
_PROMPT_AND_REPLY_TOKENS = 1536
_MIN_CONTEXT = 4096


def context_tokens(chunk_chars: int) -> int:
    needed = chunk_chars // _CHARS_PER_TOKEN + _PROMPT_AND_REPLY_TOKENS
    return max(_MIN_CONTEXT, -(-needed // 1024) * 1024)


class OllamaEngine:
    name = "ollama"

    def __init__(self, client: OllamaClient, model: str, chunk_chars: int) -> None:
        self.client = client
        self.model = model
        self.chunk_chars = chunk_chars
        self._options = {"temperature": 0, "num_ctx": context_tokens(chunk_chars)}

    async def check(self, timeout: float = 2.0) -> str:
        models = await self.client.list_models(timeout=timeout)
        if not model_present(self.model, models):
            raise EngineUnavailableError(
                f"model {self.model!r} is not pulled on Ollama at {self.client.base_url}: "
                f"{pull_hint(self.model)}"
            )
        return f"model {self.model} is available"

    async def _chat(self, messages: list[dict[str, str]], reply_model: type[ReplyT]) -> ReplyT:
        return await self.client.chat(
            model=self.model, messages=messages, reply_model=reply_model, options=self._options
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
