"""A transcript longer than the llm service takes is analysed in parts and merged, against the
real llm service (extractive engine) with a small LLM_MAX_CHARS standing in for the 200,000
characters of a four-hour meeting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from llm_service.client import LLMClient, TranscriptTooLongError
from mi_testing import services
from worker import long_transcripts
from worker.analyzer import LLMAnalyzer

LIMIT = 1500
FILLER = [
    "The team went through the quarterly numbers for the northern region in some detail.",
    "Several people felt the onboarding process for new customers is still too slow.",
    "The marketing budget was discussed again and nobody wanted to cut the events line.",
    "Support tickets about the mobile app dropped after the last release went out.",
    "The hiring plan for the data team depends on the budget decision next month.",
]


def long_meeting(sentences: int) -> str:
    body = [FILLER[i % len(FILLER)] for i in range(sentences)]
    body.insert(1, "Alice will send the budget report by Friday.")
    body.insert(len(body) // 2, "Carol will book the training room for Monday.")
    body.append("Bob will review the design document next week.")
    return " ".join(body)


@pytest.fixture(scope="module")
def small_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.llm(tmp_path_factory.mktemp("llm-small"), LLM_MAX_CHARS=str(LIMIT)) as url:
        yield url


def test_the_llm_names_its_limit_when_a_transcript_is_too_long(small_llm: str) -> None:
    with LLMClient(small_llm, timeout=30) as client, pytest.raises(TranscriptTooLongError) as e:
        client.analyze(long_meeting(40))
    assert e.value.max_chars == LIMIT


def test_a_transcript_over_the_limit_is_analysed_in_parts_and_merged(small_llm: str) -> None:
    text = long_meeting(60)  # ~5,000 characters: four parts
    assert len(text) > 3 * LIMIT
    analyzer = LLMAnalyzer(small_llm, timeout=30)
    try:
        analysis = analyzer.analyze(text, language="en", reference_date=dt.date(2026, 12, 2))
    finally:
        analyzer.close()

    owners = [item.owner for item in analysis.action_items]
    # From the first part, the middle one and the last: all three, each once.
    assert sorted(o for o in owners if o) == ["Alice", "Bob", "Carol"], analysis.action_items
    due = {item.owner: item.due for item in analysis.action_items}
    assert due["Alice"] == "Friday" and due["Carol"] == "Monday", due
    assert analysis.summary and len(analysis.summary) <= LIMIT
    assert analysis.topics
    assert analysis.engine == "extractive"


def test_parts_end_at_sentence_ends_and_lose_nothing() -> None:
    text = long_meeting(60)
    parts = long_transcripts.split(text, LIMIT)
    assert len(parts) >= 4
    assert all(len(p) <= LIMIT for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text
    # A "sentence" longer than a part is cut at spaces, never inside a word.
    words = " ".join(["word"] * 1000)
    cut = long_transcripts.split(words, LIMIT)
    assert all(len(p) <= LIMIT for p in cut) and " ".join(cut) == words
