"""The pipeline steps in-process against real Postgres, Redis, whisper and llm: each step is
idempotent, and every failure is classified as transient or permanent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from meetings.models import Meeting
from mi_testing.objectstore import MediaUnderTest
from worker import resources
from worker.config import WorkerSettings
from worker.errors import MeetingFinishedError, MeetingGoneError, PermanentError, TransientError
from worker.steps import analyze, index, transcribe


@pytest.fixture
def res(worker_env: dict[str, str]) -> Iterator[resources.Resources]:
    built = resources.build(WorkerSettings(**{k.lower(): v for k, v in worker_env.items()}))
    yield built
    built.close()


@pytest.fixture
def new_meeting(
    res: resources.Resources, spoken_wav: Path, media: MediaUnderTest
) -> Callable[..., uuid.UUID]:
    """Insert a queued meeting whose recording is the spoken test audio."""

    def create(title: str = "Budget planning", audio: Path | None = None) -> uuid.UUID:
        meeting_id = uuid.uuid4()
        name = f"{meeting_id.hex}.wav"
        data = (audio or spoken_wav).read_bytes()
        media.put(name, data)
        with res.sessions() as session, session.begin():
            session.add(
                Meeting(
                    id=meeting_id,
                    title=title,
                    status="queued",
                    media_filename=name,
                    content_type="audio/wav",
                    size_bytes=len(data),
                )
            )
        return meeting_id

    return create


def status(res: resources.Resources, meeting_id: uuid.UUID) -> str:
    with res.sessions() as session:
        return str(session.scalar(select(Meeting.status).where(Meeting.id == meeting_id)))


def test_each_step_runs_once_however_often_it_is_delivered(
    res: resources.Resources,
    new_meeting: Callable[..., uuid.UUID],
    count_rows: Callable[[str], int],
) -> None:
    meeting_id = new_meeting()

    assert transcribe.run(res, meeting_id) is True
    assert status(res, meeting_id) == "analyzing"
    segments = count_rows("transcript_segments")
    assert segments >= 1
    assert transcribe.run(res, meeting_id) is False  # redelivered: nothing new
    assert (count_rows("transcripts"), count_rows("transcript_segments")) == (1, segments)

    assert analyze.run(res, meeting_id) is True
    items = count_rows("action_items")
    assert items >= 2
    assert analyze.run(res, meeting_id) is False
    assert (count_rows("summaries"), count_rows("action_items")) == (1, items)

    index.run(res, meeting_id)
    assert status(res, meeting_id) == "done"
    with pytest.raises(MeetingFinishedError):
        index.run(res, meeting_id)  # a late duplicate of a finished meeting stops quietly
    assert count_rows("search_documents") == 1


def test_index_upserts_the_search_document(
    res: resources.Resources, new_meeting: Callable[..., uuid.UUID], database_url: str
) -> None:
    from sqlalchemy import create_engine, text

    meeting_id = new_meeting(title="Old title")
    transcribe.run(res, meeting_id)
    analyze.run(res, meeting_id)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO search_documents (meeting_id, title) VALUES (:id, 'stale')"),
            {"id": meeting_id},
        )
        conn.execute(text("UPDATE meetings SET title = 'New title'"))
    index.run(res, meeting_id)
    with engine.connect() as conn:
        title, body = conn.execute(
            text("SELECT title, transcript FROM search_documents WHERE meeting_id = :id"),
            {"id": meeting_id},
        ).one()
    engine.dispose()
    assert title == "New title"
    assert "budget" in body


def test_deleted_meeting_stops_the_pipeline(
    res: resources.Resources, new_meeting: Callable[..., uuid.UUID]
) -> None:
    with pytest.raises(MeetingGoneError):
        transcribe.run(res, uuid.uuid4())


def test_missing_recording_is_permanent(
    res: resources.Resources, new_meeting: Callable[..., uuid.UUID], media: MediaUnderTest
) -> None:
    meeting_id = new_meeting()
    for name in media.names():
        media.remove(name)  # behind the app's back
    expected = "MEDIA_DIR" if media.kind == "local" else "deleted outside the app"
    with pytest.raises(PermanentError, match=expected):
        transcribe.run(res, meeting_id)


def test_undecodable_audio_is_rejected_permanently(
    res: resources.Resources, new_meeting: Callable[..., uuid.UUID], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64)
    meeting_id = new_meeting(audio=broken)
    with pytest.raises(PermanentError, match="whisper rejected the audio"):
        transcribe.run(res, meeting_id)


def test_whisper_unreachable_is_transient(
    worker_env: dict[str, str], new_meeting: Callable[..., uuid.UUID]
) -> None:
    from mi_testing import free_port

    env = {**worker_env, "WHISPER_URL": f"127.0.0.1:{free_port()}", "WHISPER_RETRY_ATTEMPTS": "1"}
    res = resources.build(WorkerSettings(**{k.lower(): v for k, v in env.items()}))
    try:
        with pytest.raises(TransientError, match="unavailable"):
            transcribe.run(res, new_meeting())
    finally:
        res.close()


def test_analysis_text_turns_unpunctuated_segments_into_sentences() -> None:
    segments = ["alice will send the report by friday", "bob reviews it"]
    assert (
        analyze.analysis_text("alice will send the report by friday bob reviews it", segments)
        == "Alice will send the report by friday. Bob reviews it."
    )
    punctuated = "Alice will send it. Bob reviews it."
    assert analyze.analysis_text(punctuated, ["a", "b"]) == punctuated
    assert analyze.analysis_text("no segments here", []) == "no segments here"


def test_failures_outside_the_step_policy_are_recorded(
    res: resources.Resources,
    new_meeting: Callable[..., uuid.UUID],
    worker_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hard time limit and unexpected exceptions reach Task.on_failure (in the worker's
    main process for the former): the meeting must still end `failed` with the reason."""
    from celery.exceptions import TimeLimitExceeded

    from worker import tasks
    from worker.config import get_settings

    for key, value in worker_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    monkeypatch.setattr(resources, "_current", None)
    try:
        killed, broken = new_meeting(), new_meeting()
        tasks.transcribe.on_failure(TimeLimitExceeded(70), "t1", (str(killed),), {}, None)
        tasks.analyze.on_failure(ZeroDivisionError("boom"), "t2", (str(broken),), {}, None)
        with res.sessions() as session:
            errors = dict(
                session.execute(
                    select(Meeting.id, Meeting.error).where(Meeting.status == "failed")
                ).all()
            )
        assert (
            errors[killed]
            == "transcription: killed after the hard time limit (70s, WORKER_TIME_LIMIT)"
        )
        assert errors[broken] == "analysis: unexpected error ZeroDivisionError: boom"
    finally:
        if resources._current is not None:
            resources._current.close()
        get_settings.cache_clear()
