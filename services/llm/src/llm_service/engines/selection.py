"""Which engine answers a request: fixed by LLM_ENGINE, or chosen per request in `auto`.

In `auto`, Ollama answers when its server responds and has the model, else the
OpenAI-compatible server when OPENAI_BASE_URL is set and answers, else the extractive engine.
Probe results are cached for a few seconds so a busy service does not ask on every request,
yet notices soon when a server comes or goes.

A model is optional help, never a single point of failure: when the engine that was chosen
fails (down, too slow for LLM_DEADLINE, invalid replies after its retries), the extractive
engine answers and the reply's `note` says why, unless LLM_FALLBACK=false asks for the error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from llm_service.config import EngineChoice
from llm_service.engines.base import (
    Engine,
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
)
from llm_service.engines.extractive import ExtractiveEngine
from llm_service.engines.ollama.replies import ModelAnswer
from llm_service.schemas import AnalyzeResponse, AnswerResponse, EngineStatus, Passage

log = logging.getLogger(__name__)

PROBE_TTL = 15.0
PROBE_TIMEOUT = 1.0
T = TypeVar("T")


class ModelEngine(Engine, Protocol):
    async def check(self, timeout: float = 2.0) -> str: ...

    async def answer(self, question: str, passages: list[Passage]) -> ModelAnswer: ...


@dataclass(frozen=True)
class Probe:
    usable: bool
    detail: str
    at: float


class EngineSelector:
    def __init__(
        self,
        mode: EngineChoice,
        extractive: ExtractiveEngine,
        ollama: ModelEngine,
        chat: ModelEngine | None = None,
        *,
        ttl: float = PROBE_TTL,
        probe_timeout: float = PROBE_TIMEOUT,
        fallback: bool = True,
        deadline: float = 240.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.extractive = extractive
        self.ollama = ollama
        self.chat = chat  # the OpenAI-compatible engine (`openai` or `local`), when configured
        self.ttl = ttl
        self.probe_timeout = probe_timeout
        self.fallback = fallback
        self.deadline = deadline
        self._clock = clock
        self._probes: dict[str, Probe] = {}
        self._lock = asyncio.Lock()

    @property
    def models(self) -> list[ModelEngine]:
        return [e for e in (self.ollama, self.chat) if e is not None]

    async def probe(self, engine: ModelEngine, *, fresh: bool = False) -> Probe:
        """Whether `engine` is usable now, from cache when the last probe is recent."""
        async with self._lock:  # concurrent requests share one probe
            cached = self._probes.get(engine.name)
            if not fresh and cached and self._clock() - cached.at < self.ttl:
                return cached
            try:
                detail = await asyncio.wait_for(
                    engine.check(timeout=self.probe_timeout), self.probe_timeout * 2
                )
                usable = True
            except (EngineError, TimeoutError) as exc:
                usable, detail = False, str(exc) or "no answer in time"
            if cached is None or cached.usable != usable:
                log.info("%s %s: %s", engine.name, "usable" if usable else "not usable", detail)
            probe = Probe(usable, detail, self._clock())
            self._probes[engine.name] = probe
            return probe

    async def probe_ollama(self, *, fresh: bool = False) -> Probe:
        return await self.probe(self.ollama, fresh=fresh)

    def forget_probe(self) -> None:
        self._probes.clear()

    async def select(self) -> Engine:
        if self.mode == "extractive":
            return self.extractive
        if self.mode == "ollama":
            return self.ollama
        if self.mode in ("openai", "local"):
            assert self.chat is not None
            return self.chat
        for engine in self.models:
            if engine is self.chat and not engine.client.base_url:  # type: ignore[attr-defined]
                continue  # auto does not probe a server nobody configured
            if (await self.probe(engine)).usable:
                return engine
        return self.extractive

    async def _with_fallback(
        self,
        engine: Engine,
        work: Callable[[], Awaitable[T]],
        fallback: Callable[[str], Awaitable[T]],
    ) -> T:
        try:
            return await asyncio.wait_for(work(), self.deadline)
        except (EngineError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                exc = EngineTimeoutError(
                    f"{engine.name} ({engine.model}) took longer than {self.deadline:g}s "
                    "(LLM_DEADLINE)"
                )
            # auto means "the best engine available": one that vanished is never an error.
            vanished = self.mode == "auto" and isinstance(exc, EngineUnavailableError)
            if not (self.fallback or vanished):
                raise exc from None
            reason = f"{engine.name} failed: {exc}"
            log.warning("answering with the extractive engine: %s", reason)
            self.forget_probe()
            return await fallback(reason)

    async def analyze(
        self, text: str, *, language: str | None, reference_date: dt.date | None
    ) -> AnalyzeResponse:
        engine = await self.select()
        if engine is self.extractive:
            return await engine.analyze(text, language=language, reference_date=reference_date)

        async def extractive(reason: str) -> AnalyzeResponse:
            reply = await self.extractive.analyze(
                text, language=language, reference_date=reference_date
            )
            return reply.model_copy(update={"note": reason})

        return await self._with_fallback(
            engine,
            lambda: engine.analyze(text, language=language, reference_date=reference_date),
            extractive,
        )

    async def answer(self, question: str, passages: list[Passage]) -> AnswerResponse:
        """A generated answer with citations, or none (the extractive engine generates none:
        the caller shows the passages themselves)."""
        engine = await self.select()

        async def without_model(note: str | None) -> AnswerResponse:
            return AnswerResponse(
                answer=None,
                citations=[],
                supported=None,
                engine=self.extractive.name,
                model=self.extractive.model,
                note=note,
            )

        if engine is self.extractive:
            return await without_model(None)
        model_engine: ModelEngine = engine  # type: ignore[assignment]

        async def generated() -> AnswerResponse:
            reply = await model_engine.answer(question, passages)
            return AnswerResponse(
                answer=reply.answer or None,
                citations=reply.citations,
                supported=reply.supported,
                engine=engine.name,
                model=engine.model,
            )

        return await self._with_fallback(engine, generated, without_model)

    async def statuses(self) -> tuple[str | None, list[EngineStatus]]:
        """(engine that would answer now, status of each engine)."""
        engines = [
            EngineStatus(
                name=self.extractive.name,
                model=self.extractive.model,
                available=True,
                detail=await self.extractive.check(),
            )
        ]
        usable: dict[str, bool] = {}
        for engine in self.models:
            probe = await self.probe(engine, fresh=True)
            usable[engine.name] = probe.usable
            engines.append(
                EngineStatus(
                    name=engine.name,
                    model=engine.model,
                    available=probe.usable,
                    detail=probe.detail,
                )
            )
        selected: str | None
        if self.mode == "extractive":
            selected = self.extractive.name
        elif self.mode == "auto":
            selected = next((n for n, ok in usable.items() if ok), self.extractive.name)
        else:
            name = (await self.select()).name
            selected = name if usable.get(name) else None
        return selected, engines
