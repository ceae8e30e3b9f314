"""The JSON the model must return; the schemas are sent as Ollama's `format`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TOPICS = 8
_NO_ONE = frozenset({"", "none", "null", "n/a", "na", "unknown", "unassigned", "nobody", "-"})


class ModelActionItem(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    text: str = Field(min_length=1, description="The task, starting with a verb.")
    owner: str | None = Field(description="Who does it, as named in the transcript, or null.")
    due: str | None = Field(description="The deadline exactly as said, or null.")

    @field_validator("owner", "due")
    @classmethod
    def _blank_is_null(cls, value: str | None) -> str | None:
        # Models write "None" or "unknown" despite the schema allowing null.
        return None if value is None or value.lower() in _NO_ONE else value


class ModelAnalysis(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    summary: str = Field(min_length=1)
    action_items: list[ModelActionItem]
    topics: list[str]

    @field_validator("topics")
    @classmethod
    def _drop_blank_topics(cls, value: list[str]) -> list[str]:
        # Too many topics is a style problem, not an invalid reply: keep the first few.
        return [topic for topic in value if topic][:MAX_TOPICS]


class ModelSummary(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    summary: str = Field(min_length=1)


class ModelAnswer(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    answer: str = Field(description="The answer from the passages, or empty.")
    citations: list[int] = Field(description="Numbers of the passages the answer relies on.")
    supported: bool = Field(description="Whether the passages contain the answer.")
