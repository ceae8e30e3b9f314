"""Response bodies of the public API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["queued", "transcribing", "analyzing", "done", "failed"]


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it.")


class MeetingCreated(BaseModel):
    id: uuid.UUID
    status: Status
    url: str = Field(description="Where to poll for progress.")


class Word(BaseModel):
    start: float
    end: float
    word: str = Field(description="As in the text, with its punctuation.")
    probability: float = Field(description="The engine's confidence, 0 to 1.")


class Segment(BaseModel):
    start: float = Field(description="Seconds from the start of the recording.")
    end: float
    text: str
    words: list[Word] | None = Field(
        default=None, description="Each word's timing, when the engine gives them (faster-whisper)."
    )


class TranscriptOut(BaseModel):
    text: str
    language: str | None
    language_probability: float | None = Field(
        default=None, description="How sure the engine is of `language`, 0 to 1."
    )
    engine: str
    model: str
    audio_seconds: float
    segments: list[Segment]


class ActionItemOut(BaseModel):
    text: str
    owner: str | None = None
    due: str | None = None


class MeetingSummaryOut(BaseModel):
    """A meeting in a list: everything but the (large) pipeline results."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    status: Status
    error: str | None
    original_filename: str | None
    content_type: str
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class AnalysisOut(BaseModel):
    engine: str = Field(description="Who wrote the summary: local, openai, ollama, extractive.")
    model: str
    note: str | None = Field(
        description="Why the extractive engine wrote it instead of the configured model "
        "(down, too slow, invalid replies), when it did."
    )


class MeetingOut(MeetingSummaryOut):
    progress: float | None = Field(
        default=None, description="Fraction of the audio transcribed so far, while transcribing."
    )
    vocabulary: str | None = Field(default=None, description="The upload's vocabulary hint.")
    transcript: TranscriptOut | None
    summary: str | None
    analysis: AnalysisOut | None = None
    topics: list[str]
    action_items: list[ActionItemOut]


class MeetingPage(BaseModel):
    items: list[MeetingSummaryOut]
    total: int
    limit: int
    offset: int


class SearchHitOut(BaseModel):
    id: uuid.UUID
    title: str
    status: Status
    created_at: datetime
    rank: float
    snippet: str = Field(description="HTML-escaped excerpt; matches are wrapped in <mark>.")
    segment: int | None = Field(
        default=None, description="Position of the transcript segment the hit points at."
    )
    start_seconds: float | None = Field(
        default=None, description="When that segment starts in the recording."
    )
    matched: str = Field(default="keyword", description="keyword, semantic or both.")


class SearchPage(BaseModel):
    query: str
    items: list[SearchHitOut]
    total: int
    limit: int
    offset: int
    mode: str = "keyword"
    note: str | None = Field(
        default=None, description="Why results are fewer than asked for (a fallback), if so."
    )


class AskIn(BaseModel):
    # Something to ask, and no NUL character (Postgres text cannot hold one).
    question: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")


class CitationOut(BaseModel):
    number: int
    meeting_id: uuid.UUID
    title: str
    segment: int
    start_seconds: float
    at: str = Field(description="start_seconds as m:ss (or h:mm:ss).")
    text: str
    similarity: float


class AskOut(BaseModel):
    question: str
    answer: str | None = Field(description="Generated from the citations; null when none was.")
    supported: bool | None
    citations: list[CitationOut]
    engine: str | None
    model: str | None
    note: str | None = None
