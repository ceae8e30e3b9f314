"""A task whose start finds Redis down (a restart, a failover) is retried with backoff like any
transient error: the meeting is not failed on the spot as an unexpected error."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from meetings.models import Meeting
from mi_testing import free_port
from worker import resources
from worker.config import WorkerSettings, get_settings


@pytest.fixture
def dead_redis_worker(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[resources.Resources]:
    """This process as a worker whose Redis does not answer (its Postgres does)."""
    env = {**worker_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    built = resources.build(WorkerSettings(**{k.lower(): v for k, v in env.items()}))
    monkeypatch.setattr(resources, "_current", built)
    monkeypatch.setattr(resources, "_owner_pid", os.getpid())
    yield built
    built.close()
    get_settings.cache_clear()


def test_redis_down_at_task_start_is_retried_not_an_unexpected_failure(
    dead_redis_worker: resources.Resources, caplog: pytest.LogCaptureFixture
) -> None:
    from worker.celery_app import app
    from worker.tasks import transcribe

    res = dead_redis_worker
    meeting_id = uuid.uuid4()
    with res.sessions() as session, session.begin():
        session.add(
            Meeting(
                id=meeting_id,
                title="Planning",
                status="queued",
                media_filename=f"{meeting_id.hex}.wav",
                content_type="audio/wav",
                size_bytes=1,
            )
        )
    # Run here, as a pool process would; eagerly, every retry runs at once, so the meeting
    # ends failed after WORKER_MAX_RETRIES (2) retries: the bounded transient policy.
    app.conf.task_always_eager = True
    try:
        transcribe.apply(args=[str(meeting_id)])
    finally:
        app.conf.task_always_eager = False

    retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retried) == 2 and "connecting to 127.0.0.1" in retried[0], retried
    with res.sessions() as session:
        meeting = session.scalar(select(Meeting).where(Meeting.id == meeting_id))
    assert meeting is not None
    assert meeting.error is not None
    assert meeting.error.startswith("transcription: gave up after 3 attempts: Error 111"), (
        meeting.error
    )
