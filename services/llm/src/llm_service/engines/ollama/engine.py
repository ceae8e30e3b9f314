"""Analysis by an Ollama model, map-reduce over chunks for transcripts longer than a context.

map:    each chunk is analyzed on its own (summary, action items, topics);
reduce: action items and topics are merged, the chunk summaries are summarized once more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter

from llm_service.engines.base import EngineUnavailableError
from llm_service.engines.extractive.dates import find_due
from llm_service.engines.ollama.chunking import chunk_text
from llm_service.engines.ollama.client import OllamaClient, model_present, pull_hint
from llm_service.engines.ollama.prompts import analyze_messages, reduce_messages
from llm_service.engines.ollama.replies import ModelActionItem, ModelAnalysis, ModelSummary
from llm_service.schemas import ActionItem, AnalyzeResponse

# Ollama runs requests for one model mostly one after another; two in flight keeps it busy
# without queueing a whole transcript's chunks at once.
MAP_CONCURRENCY = 2
MAX_TOPICS = 6
# Ollama silently cuts a prompt longer than the model context (num_ctx), so the context is
# sized for the chunk: ~3 characters per token, plus room for instructions and the reply.
_CHARS_PER_TOKEN = 3
_PROMPT_AND_REPLY_TOKENS = 1536
_MIN_CONTEXT = 4096


def context_tokens(chunk_chars: int) -> int:
    needed = chunk_chars // _CHARS_PER_TOKEN + _PROMPT_AND_REPLY_TOKENS
    return max(_MIN_CONTEXT, -(-needed // 1024) * 1024)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def merge_action_items(parts: list[list[ModelActionItem]]) -> list[ModelActionItem]:
    """Items in order of first mention; a repeat adds the owner or due it was missing."""
    merged: dict[str, ModelActionItem] = {}
    for items in parts:
        for item in items:
            key = _norm(item.text)
            seen = merged.get(key)
            if seen is None:
                merged[key] = item
            elif (seen.owner is None and item.owner) or (seen.due is None and item.due):
                merged[key] = ModelActionItem(
                    text=seen.text, owner=seen.owner or item.owner, due=seen.due or item.due
                )
    return list(merged.values())


def merge_topics(parts: list[list[str]], limit: int = MAX_TOPICS) -> list[str]:
    """Topics most chunks mention first; ties keep the order they first came up in."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for topics in parts:
        for topic in dict.fromkeys(topics):
            key = _norm(topic)
            counts[key] += 1
            first.setdefault(key, topic)
    order = list(first)
    ranked = sorted(order, key=lambda k: (-counts[k], order.index(k)))
    return [first[k] for k in ranked[:limit]]


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

    async def analyze(
        self, text: str, *, language: str | None = None, reference_date: dt.date | None = None
    ) -> AnalyzeResponse:
        chunks = chunk_text(text, self.chunk_chars)
        gate = asyncio.Semaphore(MAP_CONCURRENCY)

        async def analyze_chunk(index: int, chunk: str) -> ModelAnalysis:
            async with gate:
                return await self.client.chat(
                    model=self.model,
                    messages=analyze_messages(chunk, index + 1, len(chunks), language),
                    reply_model=ModelAnalysis,
                    options=self._options,
                )

        parts = await asyncio.gather(*(analyze_chunk(i, c) for i, c in enumerate(chunks)))
        if len(parts) == 1:
            summary = parts[0].summary
        else:
            summary = await self._reduce_summaries([p.summary for p in parts], language)
        items = merge_action_items([p.action_items for p in parts])
        return AnalyzeResponse(
            summary=summary,
            action_items=[self._action_item(item, reference_date) for item in items],
            topics=merge_topics([p.topics for p in parts]),
            engine=self.name,
            model=self.model,
        )

    @staticmethod
    def _action_item(item: ModelActionItem, reference_date: dt.date | None) -> ActionItem:
        due = find_due(item.due, reference_date) if item.due and reference_date else None
        return ActionItem(
            text=item.text, owner=item.owner, due=item.due, due_date=due.date if due else None
        )

    async def _reduce_summaries(self, summaries: list[str], language: str | None) -> str:
        # Many chunk summaries may not fit one context either: merge them in groups that fit,
        # and repeat until one call can merge them all.
        while len(summaries) > 1 and sum(len(s) for s in summaries) > self.chunk_chars:
            groups: list[list[str]] = [[]]
            for summary in summaries:
                if groups[-1] and sum(map(len, groups[-1])) + len(summary) > self.chunk_chars:
                    groups.append([])
                groups[-1].append(summary)
            if len(groups) == len(summaries):
                break  # each summary fills a context alone; one last merge is all there is
            summaries = [
                await self._merge(group, language) if len(group) > 1 else group[0]
                for group in groups
            ]
        return await self._merge(summaries, language)

    async def _merge(self, summaries: list[str], language: str | None) -> str:
        reply = await self.client.chat(
            model=self.model,
            messages=reduce_messages(summaries, language),
            reply_model=ModelSummary,
            options=self._options,
        )
        return reply.summary
