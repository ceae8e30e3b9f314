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
    engine: str = Field(description="The engine that answered: 'ollama' or 'extractive'.")
    model: str = Field(description="The Ollama model tag, or the extractive algorithm.")


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
