"""The HTTP contract of the service: what `/v1/analyze` accepts and returns."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, field_validator


class AnalyzeRequest(BaseModel):
    text: str = Field(description="The transcript; plain text, speaker labels optional.")
    language: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
        description="BCP 47 tag such as 'en' or 'de-CH'; the reply is written in it.",
        examples=["en"],
    )
    reference_date: dt.date | None = Field(
        default=None,
        description="Date of the meeting; when given, due phrases also get an ISO `due_date`.",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or only whitespace: send the transcript text")
        return value


class ActionItem(BaseModel):
    text: str = Field(description="What is to be done.")
    owner: str | None = Field(default=None, description="Who does it, when the transcript says.")
    due: str | None = Field(default=None, description="When, as said: 'Friday', 'end of week'.")
    due_date: dt.date | None = Field(
        default=None, description="`due` resolved against `reference_date`, when both are known."
    )


class AnalyzeResponse(BaseModel):
    summary: str
    action_items: list[ActionItem]
    topics: list[str]
    engine: str = Field(
        description="The engine that answered: 'local', 'openai', 'ollama' or 'extractive'."
    )
    model: str = Field(description="The model (tag, GGUF file), or the extractive algorithm.")
    note: str | None = Field(
        default=None,
        description="Why another engine than the configured one answered (a model that was "
        "down, slow or invalid), when it did.",
    )


# --- embeddings -------------------------------------------------------------------------------

EMBED_MAX_TEXTS = 64
EMBED_MAX_CHARS = 4000


class EmbedRequest(BaseModel):
    texts: list[str] = Field(
        min_length=1,
        max_length=EMBED_MAX_TEXTS,
        description="Texts to embed (longer ones are truncated to the model's 256 tokens).",
    )

    @field_validator("texts")
    @classmethod
    def _bounded(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            if len(text) > EMBED_MAX_CHARS:
                raise ValueError(f"texts[{i}] is {len(text)} characters; at most {EMBED_MAX_CHARS}")
        return value


class EmbedResponse(BaseModel):
    model: str
    dimensions: int
    vectors: list[list[float]] = Field(description="One unit-length vector per text, in order.")


# --- answers over retrieved passages -----------------------------------------------------------

QUESTION_MAX = 1000
PASSAGES_MAX = 12


class Passage(BaseModel):
    title: str = Field(max_length=300)
    at: str = Field(max_length=40, description="Where in the meeting, e.g. '12:03'.")
    text: str = Field(min_length=1, max_length=4000)


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, max_length=QUESTION_MAX)
    passages: list[Passage] = Field(min_length=1, max_length=PASSAGES_MAX)


class AnswerResponse(BaseModel):
    answer: str | None = Field(
        description="The generated answer; null when no model answered (extractive engine) or "
        "the passages do not contain the answer."
    )
    citations: list[int] = Field(description="1-based numbers of the passages relied on.")
    supported: bool | None = Field(
        description="Whether the model found the answer in the passages; null without a model."
    )
    engine: str
    model: str
    note: str | None = None


class EngineStatus(BaseModel):
    name: str
    model: str
    available: bool
    detail: str = ""


class EnginesResponse(BaseModel):
    configured: str = Field(description="LLM_ENGINE as configured: auto, ollama or extractive.")
    selected: str | None = Field(
        description="The engine that would answer now; null when none is usable."
    )
    engines: list[EngineStatus]
