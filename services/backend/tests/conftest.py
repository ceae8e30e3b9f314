"""Fixtures for the backend tests: real Postgres and Redis (the mi_testing plugin), the app served
by uvicorn on loopback, and small audio files."""

from __future__ import annotations

import io
import uuid
import wave
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from backend.config import BackendSettings
from backend.main import create_app
from meetings.models import (
    ActionItem,
    Meeting,
    SearchDocument,
    Summary,
    Transcript,
    TranscriptSegment,
)
from mi_testing import ApiServer, free_port
from mi_testing.objectstore import MediaUnderTest

API_TOKEN = "test-token-0123456789abcdef"


def wav_bytes(seconds: float = 0.2, rate: int = 16_000) -> bytes:
    """A silent mono 16-bit WAV: enough for type sniffing."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


@pytest.fixture
def settings(database_url: str, redis_url: str, media: MediaUnderTest) -> BackendSettings:
    # whisper and llm point at ports nobody listens on: readiness reports them as down.
    # The recordings go to MEDIA_DIR, or to a bucket when MI_MEDIA_STORE=s3 (`nox -s s3`).
    return BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        **media.fields,
        max_upload_mb=1,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=f"http://127.0.0.1:{free_port()}",
    )


@pytest.fixture
def api(settings: BackendSettings) -> Iterator[ApiServer]:
    with ApiServer(create_app(settings)) as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
def anonymous(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


def insert_meeting(
    database_url: str,
    *,
    title: str,
    transcript: str | None = None,
    summary: str | None = None,
    status: str = "done",
    created_at: datetime | None = None,
    action_items: list[tuple[str, str | None, str | None]] = (),  # type: ignore[assignment]
) -> uuid.UUID:
    meeting_id = uuid.uuid4()
    engine = create_engine(database_url)
    with Session(engine) as session:
        meeting = Meeting(
            id=meeting_id,
            title=title,
            status=status,
            media_filename=f"{meeting_id.hex}.wav",
            original_filename="meeting.wav",
            content_type="audio/wav",
            size_bytes=1234,
        )
        if created_at is not None:
            meeting.created_at = created_at
        session.add(meeting)
        session.flush()
        if transcript is not None:
            row = Transcript(
                meeting_id=meeting_id,
                text=transcript,
                language="en",
                engine="test",
                model="test",
                audio_seconds=10.0,
                processing_seconds=1.0,
            )
            session.add(row)
            session.flush()
            for position, sentence in enumerate(transcript.split(". ")):
                session.add(
                    TranscriptSegment(
                        transcript_id=row.id,
                        position=position,
                        start_seconds=position * 2.0,
                        end_seconds=position * 2.0 + 1.5,
                        text=sentence,
                    )
                )
        if summary is not None:
            session.add(
                Summary(
                    meeting_id=meeting_id, text=summary, topics=["budget"], engine="t", model="t"
                )
            )
        for position, (text, owner, due) in enumerate(action_items):
            item = ActionItem(meeting_id=meeting_id, position=position, text=text)
            item.owner, item.due = owner, due
            session.add(item)
        if transcript is not None or summary is not None:
            session.add(
                SearchDocument(
                    meeting_id=meeting_id,
                    title=title,
                    summary=summary or "",
                    transcript=transcript or "",
                )
            )
        session.commit()
    engine.dispose()
    return meeting_id


def timestamps(count: int) -> list[datetime]:
    """Distinct creation times one minute apart, oldest first."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [start + timedelta(minutes=i) for i in range(count)]


@pytest.fixture
def add_meeting(database_url: str) -> Callable[..., uuid.UUID]:
    """Insert a meeting (and its results) into the test database; returns its id."""

    def add(**kwargs: Any) -> uuid.UUID:
        return insert_meeting(database_url, **kwargs)

    return add


@pytest.fixture
def wav() -> bytes:
    return wav_bytes()
