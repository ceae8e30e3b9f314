"""Long transcripts are cut at natural breaks, within the limit, losing nothing."""

from __future__ import annotations

import pytest

from llm_service.engines.ollama.chunking import chunk_text


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  Alice: hello there.  ", 100) == ["Alice: hello there."]


@pytest.mark.parametrize("limit", [200, 500, 1000, 3000])
def test_chunks_fit_and_keep_every_word(transcripts: dict[str, str], limit: int) -> None:
    text = transcripts["product_planning"]
    chunks = chunk_text(text, limit)
    assert len(chunks) >= len(text) // limit
    assert all(len(chunk) <= limit for chunk in chunks)
    assert " ".join(chunks).split() == text.split()


def test_speaker_turns_are_not_split_when_they_fit(transcripts: dict[str, str]) -> None:
    chunks = chunk_text(transcripts["incident_review"], 1000)
    lines = {line for line in transcripts["incident_review"].splitlines() if line}
    for chunk in chunks:
        assert set(chunk.splitlines()) <= lines


def test_overlong_sentence_and_word_are_cut_hard_but_kept() -> None:
    sentence = " ".join(f"word{i}" for i in range(100))  # no punctuation at all
    giant = "x" * 250
    chunks = chunk_text(f"{sentence} {giant}", 120)
    assert all(len(chunk) <= 120 for chunk in chunks)
    assert "".join(chunks).replace(" ", "").replace("\n", "") == (sentence + giant).replace(" ", "")
