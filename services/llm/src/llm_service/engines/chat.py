"""Analysis by a chat model, whatever API carries it (Ollama's, an OpenAI-compatible one).

A transcript longer than one context is analysed in parts and merged (map-reduce):

map:    each chunk is analysed on its own (summary, action items, topics);
reduce: action items and topics are merged, the chunk summaries are summarized once more.

Questions over retrieved passages (`answer`) go through the same chat call with their own
schema. An engine supplies only `Chat`: one validated structured reply per call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel

from llm_service.engines.extractive.dates import find_due
from llm_service.engines.extractive.stopwords import STOPWORDS
from llm_service.engines.ollama.chunking import chunk_text
from llm_service.engines.ollama.prompts import analyze_messages, answer_messages, reduce_messages
from llm_service.engines.ollama.replies import (
    ModelActionItem,
    ModelAnalysis,
    ModelAnswer,
    ModelSummary,
)
from llm_service.schemas import ActionItem, AnalyzeResponse, Passage

ReplyT = TypeVar("ReplyT", bound=BaseModel)
Chat = Callable[[list[dict[str, str]], type[ReplyT]], Awaitable[ReplyT]]
"""One chat call whose reply must validate as the given model (retries are the caller's)."""

# A server runs requests for one model mostly one after another; two in flight keeps it busy
# without queueing a whole transcript's chunks at once.
MAP_CONCURRENCY = 2
MAX_TOPICS = 6


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


def action_item(item: ModelActionItem, reference_date: dt.date | None) -> ActionItem:
    due = find_due(item.due, reference_date) if item.due and reference_date else None
    return ActionItem(
        text=item.text, owner=item.owner, due=item.due, due_date=due.date if due else None
    )


async def analyze_in_parts(
    chat: Chat,
    text: str,
    *,
    chunk_chars: int,
    language: str | None,
    reference_date: dt.date | None,
    engine: str,
    model: str,
) -> AnalyzeResponse:
    chunks = chunk_text(text, chunk_chars)
    gate = asyncio.Semaphore(MAP_CONCURRENCY)

    async def analyze_chunk(index: int, chunk: str) -> ModelAnalysis:
        async with gate:
            messages = analyze_messages(chunk, index + 1, len(chunks), language)
            return await chat(messages, ModelAnalysis)

    parts = await asyncio.gather(*(analyze_chunk(i, c) for i, c in enumerate(chunks)))
    if len(parts) == 1:
        summary = parts[0].summary
    else:
        summary = await reduce_summaries(chat, [p.summary for p in parts], chunk_chars, language)
    items = merge_action_items([p.action_items for p in parts])
    return AnalyzeResponse(
        summary=summary,
        action_items=[action_item(item, reference_date) for item in items],
        topics=merge_topics([p.topics for p in parts]),
        engine=engine,
        model=model,
    )


async def reduce_summaries(
    chat: Chat, summaries: list[str], chunk_chars: int, language: str | None
) -> str:
    # Many chunk summaries may not fit one context either: merge them in groups that fit,
    # and repeat until one call can merge them all.
    async def merge(group: list[str]) -> str:
        return (await chat(reduce_messages(group, language), ModelSummary)).summary

    while len(summaries) > 1 and sum(len(s) for s in summaries) > chunk_chars:
        groups: list[list[str]] = [[]]
        for summary in summaries:
            if groups[-1] and sum(map(len, groups[-1])) + len(summary) > chunk_chars:
                groups.append([])
            groups[-1].append(summary)
        if len(groups) == len(summaries):
            break  # each summary fills a context alone; one last merge is all there is
        summaries = [await merge(group) if len(group) > 1 else group[0] for group in groups]
    return await merge(summaries)


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2} - STOPWORDS


def grounded(
    answer_text: str, question: str, cited: list[Passage], *, require_overlap: bool = False
) -> bool:
    """Whether the answer says something the cited passages say: one of its content words
    (beyond the question's own) appears in them. Small models answer from what they know
    despite the instructions ("the capital of Peru is Lima" citing a budget meeting); such an
    answer shares no word with its citations and is dropped."""
    said = _content_words(" ".join(p.text + " " + p.title for p in cited))
    new = _content_words(answer_text) - _content_words(question)
    if not new:  # the answer only repeats the question: true of any passage, proof of none
        return not require_overlap
    return bool(new & said)


async def answer(chat: Chat, question: str, passages: list[Passage]) -> ModelAnswer:
    """The model's answer from `passages` only, citing them by number. Citations are checked
    against the text: numbers of passages that were not given are dropped, and when none is
    left (small models miscount: "[2]" with one passage) the passages that bear the answer out
    are cited instead; an answer no passage bears out is no answer."""
    reply = await chat(answer_messages(question, passages), ModelAnswer)
    valid = [n for n in dict.fromkeys(reply.citations) if 1 <= n <= len(passages)]
    supported = reply.supported and bool(reply.answer)
    if supported and not valid:
        valid = [
            n
            for n, passage in enumerate(passages, start=1)
            if grounded(reply.answer, question, [passage], require_overlap=True)
        ]
    if supported and not (
        valid and grounded(reply.answer, question, [passages[n - 1] for n in valid])
    ):
        supported = False
    return ModelAnswer(
        answer=reply.answer if supported else "",
        citations=valid if supported else [],
        supported=supported,
    )
