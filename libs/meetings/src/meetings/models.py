"""Tables of the meeting pipeline.

A meeting owns at most one transcript, one summary and one search document (unique
`meeting_id`), so a redelivered worker task can upsert instead of adding duplicates. Every
child row cascades on delete: removing a meeting is one DELETE.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    cast,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

from meetings.base import Base

TITLE_MAX = 200
VOCABULARY_MAX = 500
"""Names and jargon an uploader lists for the speech engine; a hint, not a transcript."""
SEARCH_CONFIG = "english"
"""Text-search configuration baked into the generated tsvector column (changing it needs a
migration)."""


EMBEDDING_DIMENSIONS = 384
"""Length of the stored vectors: the locked embedding model's (all-MiniLM-L6-v2). Another
model with another length needs a migration (and `inv search.reindex`)."""


class MeetingStatus(StrEnum):
    QUEUED = "queued"
    TRANSCRIBING = "transcribing"
    ANALYZING = "analyzing"
    DONE = "done"
    FAILED = "failed"


_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in MeetingStatus)


def _now() -> Any:
    return func.now()


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_valid"),
        # Listing pages newest first; the id breaks ties so pages never overlap.
        Index("ix_meetings_created_at_id", "created_at", "id"),
        Index("ix_meetings_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    status: Mapped[str] = mapped_column(String(16), default=MeetingStatus.QUEUED.value)
    media_filename: Mapped[str] = mapped_column(String(64), unique=True)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    vocabulary: Mapped[str | None] = mapped_column(String(VOCABULARY_MAX))
    # Fraction of the audio transcribed so far (0..1), while the meeting is transcribing.
    progress: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=_now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Until when a running pipeline step holds the meeting (its start plus the hard task time
    # limit): the worker's sweeper leaves a leased meeting alone, so it never starts a second
    # run of a step that is still going (see worker/sweeper.py).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How often the sweeper found the meeting stuck and queued it again; bounded, so a meeting
    # that keeps getting stuck fails with a reason instead of looping forever.
    recoveries: Mapped[int] = mapped_column(Integer, server_default="0", default=0)

    transcript: Mapped[Transcript | None] = relationship(
        back_populates="meeting", passive_deletes=True
    )
    summary: Mapped[Summary | None] = relationship(back_populates="meeting", passive_deletes=True)
    action_items: Mapped[list[ActionItem]] = relationship(
        back_populates="meeting", order_by="ActionItem.position", passive_deletes=True
    )


class StepResult:
    """What a pipeline step stores once per meeting: its text and the engine that made it.

    `meeting_id` is unique, so a redelivered step upserts instead of adding a duplicate.
    """

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    meeting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), unique=True
    )
    text: Mapped[str] = mapped_column(Text)
    engine: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Transcript(StepResult, Base):
    __tablename__ = "transcripts"

    language: Mapped[str | None] = mapped_column(String(16))
    # How sure the engine is of `language` (0..1); 1 when it was asked for.
    language_probability: Mapped[float | None] = mapped_column(Float)
    audio_seconds: Mapped[float] = mapped_column(Float)
    processing_seconds: Mapped[float] = mapped_column(Float)

    meeting: Mapped[Meeting] = relationship(back_populates="transcript")
    segments: Mapped[list[TranscriptSegment]] = relationship(
        back_populates="transcript", order_by="TranscriptSegment.position", passive_deletes=True
    )


SEGMENT_VECTOR_SQL = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, text)"
"""Each segment's own words, so a keyword hit can point at the moment it was said."""


class TranscriptSegment(Base):
    __tablename__ = "transcript_segments"
    __table_args__ = (UniqueConstraint("transcript_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No separate index: the unique (transcript_id, position) index serves lookups by transcript.
    transcript_id: Mapped[int] = mapped_column(ForeignKey("transcripts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start_seconds: Mapped[float] = mapped_column(Float)
    end_seconds: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    # [[start, end, word, probability], ...] when the engine times words (faster-whisper).
    # none_as_null: Python None is SQL NULL here, not the JSON value `null`.
    words: Mapped[list[list[Any]] | None] = mapped_column(JSONB(none_as_null=True))
    tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEGMENT_VECTOR_SQL, persisted=True))

    transcript: Mapped[Transcript] = relationship(back_populates="segments")


class Summary(StepResult, Base):
    __tablename__ = "summaries"

    topics: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # Why another engine than the configured one wrote it (a model down, slow or invalid).
    note: Mapped[str | None] = mapped_column(Text)

    meeting: Mapped[Meeting] = relationship(back_populates="summary")


class ActionItem(Base):
    __tablename__ = "action_items"
    __table_args__ = (UniqueConstraint("meeting_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Lookups by meeting use the unique (meeting_id, position) index.
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    due: Mapped[str | None] = mapped_column(String(200))

    meeting: Mapped[Meeting] = relationship(back_populates="action_items")


SEARCH_VECTOR_SQL = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(summary, '')), 'B') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(transcript, '')), 'C')"
)
"""Title outranks summary outranks transcript: ts_rank weighs A > B > C."""


class SearchDocument(Base):
    """What full-text search reads: one denormalised row per indexed meeting.

    Postgres keeps `tsv` in step with the text columns (a stored generated column), so the
    worker only writes plain text and can never leave a stale vector behind.
    """

    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_tsv", "tsv", postgresql_using="gin"),)

    meeting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    summary: Mapped[str] = mapped_column(Text, server_default="")
    transcript: Mapped[str] = mapped_column(Text, server_default="")
    tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=_now()
    )


class Vector(UserDefinedType[list[float]]):
    """pgvector's `vector(n)`: written as its text form '[0.1,0.2,...]' (no extra driver)."""

    cache_ok = True

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions

    def get_col_spec(self, **_: Any) -> str:
        return f"vector({self.dimensions})"

    def bind_processor(self, dialect: Any) -> Any:
        return lambda value: None if value is None else vector_text(value)

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast(bindvalue, self)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        def parse(value: Any) -> list[float] | None:
            if value is None or isinstance(value, list):
                return value
            return [float(v) for v in str(value).strip("[]").split(",") if v]

        return parse


# Reflection (Alembic's drift check) reads `vector(384)` back as this type, not as unknown.
postgresql_base.ischema_names["vector"] = Vector


def vector_text(values: list[float]) -> str:
    """A vector as pgvector reads it from text."""
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"


class TranscriptChunk(Base):
    """A few consecutive transcript segments (~80 words) and their embedding: what search by
    meaning compares a question with, and where in the recording a hit points.

    Written by the worker's `embed` step (or `inv search.reindex`); a meeting without chunks
    is still found by keyword search. The HNSW index ranks by cosine distance (`<=>`).
    """

    __tablename__ = "transcript_chunks"
    __table_args__ = (
        UniqueConstraint("meeting_id", "position"),
        Index(
            "ix_transcript_chunks_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    segment_position: Mapped[int] = mapped_column(Integer)
    start_seconds: Mapped[float] = mapped_column(Float)
    end_seconds: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
