"""Which engine answers a request: fixed by LLM_ENGINE, or chosen per request in `auto`.

In `auto`, Ollama answers when its server responds and has the model, else the extractive
engine does. The probe result is cached for a few seconds so a busy service does not ask
Ollama on every request, yet notices soon when Ollama comes or goes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from llm_service.config import EngineChoice
from llm_service.engines.base import Engine, EngineError, EngineUnavailableError
from llm_service.engines.extractive import ExtractiveEngine
from llm_service.engines.ollama import OllamaEngine
from llm_service.schemas import AnalyzeResponse, EngineStatus

log = logging.getLogger(__name__)

PROBE_TTL = 15.0
PROBE_TIMEOUT = 1.0


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
        ollama: OllamaEngine,
        *,
        ttl: float = PROBE_TTL,
        probe_timeout: float = PROBE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.extractive = extractive
        self.ollama = ollama
        self.ttl = ttl
        self.probe_timeout = probe_timeout
        self._clock = clock
        self._probe: Probe | None = None
        self._lock = asyncio.Lock()

    async def probe_ollama(self, *, fresh: bool = False) -> Probe:
        """Whether Ollama is usable now, from cache when the last probe is recent."""
        async with self._lock:  # concurrent requests share one probe
            cached = self._probe
            if not fresh and cached and self._clock() - cached.at < self.ttl:
                return cached
            try:
                detail = await asyncio.wait_for(
                    self.ollama.check(timeout=self.probe_timeout), self.probe_timeout * 2
                )
                usable = True
            except (EngineError, TimeoutError) as exc:
                usable, detail = False, str(exc) or "no answer in time"
            if cached is None or cached.usable != usable:
                log.info("ollama %s: %s", "usable" if usable else "not usable", detail)
            self._probe = Probe(usable, detail, self._clock())
            return self._probe

    def forget_probe(self) -> None:
        self._probe = None

    async def select(self) -> Engine:
        if self.mode == "extractive":
            return self.extractive
        if self.mode == "ollama":
            return self.ollama
        return self.ollama if (await self.probe_ollama()).usable else self.extractive

    async def analyze(
        self, text: str, *, language: str | None, reference_date: dt.date | None
    ) -> AnalyzeResponse:
        engine = await self.select()
        try:
            return await engine.analyze(text, language=language, reference_date=reference_date)
        except EngineUnavailableError as exc:
            # Ollama went away (or lost the model) since the probe: auto means "best
            # available", so answer with the extractive engine and probe afresh next time.
            if self.mode != "auto" or engine is self.extractive:
                raise
            log.warning("ollama unavailable, answering with the extractive engine: %s", exc)
            self.forget_probe()
            return await self.extractive.analyze(
                text, language=language, reference_date=reference_date
            )

    async def statuses(self) -> tuple[str | None, list[EngineStatus]]:
        """(engine that would answer now, status of each engine)."""
        probe = await self.probe_ollama(fresh=True)
        engines = [
            EngineStatus(
                name=self.extractive.name,
                model=self.extractive.model,
                available=True,
                detail=await self.extractive.check(),
            ),
            EngineStatus(
                name=self.ollama.name,
                model=self.ollama.model,
                available=probe.usable,
                detail=probe.detail,
            ),
        ]
        selected: str | None
        if self.mode == "extractive":
            selected = self.extractive.name
        elif self.mode == "ollama":
            selected = self.ollama.name if probe.usable else None
        else:
            selected = self.ollama.name if probe.usable else self.extractive.name
        return selected, engines
