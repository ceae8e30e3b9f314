"""The extractive engine: no model, no network, the same answer for the same transcript."""

from __future__ import annotations

import datetime as dt

import anyio.to_thread

from llm_service.engines.extractive.actions import find_actions, owners
from llm_service.engines.extractive.summarizer import summarize
from llm_service.engines.extractive.text import split_sentences
from llm_service.engines.extractive.topics import extract_topics
from llm_service.schemas import ActionItem, AnalyzeResponse

MODEL_NAME = "textrank-v1"


def analyze_text(text: str, reference_date: dt.date | None = None) -> AnalyzeResponse:
    """Summary sentences are quoted from the transcript, never rewritten."""
    sentences = split_sentences(text)
    actions = find_actions(sentences, reference_date)
    speakers = {s.speaker for s in sentences if s.speaker}
    topics = extract_topics(sentences, exclude=speakers | owners(actions))
    return AnalyzeResponse(
        summary=" ".join(s.text for s in summarize(sentences)),
        action_items=[
            ActionItem(text=a.text, owner=a.owner, due=a.due, due_date=a.due_date) for a in actions
        ],
        topics=topics,
        engine="extractive",
        model=MODEL_NAME,
    )


class ExtractiveEngine:
    name = "extractive"
    model = MODEL_NAME

    async def analyze(
        self, text: str, *, language: str | None = None, reference_date: dt.date | None = None
    ) -> AnalyzeResponse:
        # The rules are English; other languages still get a ranked summary and topics.
        del language
        # CPU-bound: run it off the event loop so health checks keep answering meanwhile.
        return await anyio.to_thread.run_sync(analyze_text, text, reference_date)

    async def check(self) -> str:
        return "no model needed"
