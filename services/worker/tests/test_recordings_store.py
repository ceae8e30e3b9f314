"""The worker reads recordings from the store, never from a directory it shares with the
backend: here a bucket on a real S3-protocol server (rclone's `serve s3`, on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meetings.models import Meeting
from mi_testing.objectstore import MediaUnderTest
from worker import resources
from worker.config import WorkerSettings
from worker.errors import PermanentError, TransientError
from worker.steps import transcribe


@pytest.fixture
def media(s3_media: MediaUnderTest) -> MediaUnderTest:
    """Every fixture of this module that asks for the store gets a bucket."""
    return s3_media


@pytest.fixture
def res(worker_env: dict[str, str]) -> Iterator[resources.Resources]:
    built = resources.build(WorkerSettings(**{k.lower(): v for k, v in worker_env.items()}))
    yield built
    built.close()


def _meeting(res: resources.Resources, media: MediaUnderTest, audio: Path) -> uuid.UUID:
    meeting_id = uuid.uuid4()
    name = f"{meeting_id.hex}.wav"
    media.put(name, audio.read_bytes())
    with res.sessions() as session, session.begin():
        session.add(
            Meeting(
                id=meeting_id,
                title="From a bucket",
                status="queued",
                media_filename=name,
                content_type="audio/wav",
                size_bytes=audio.stat().st_size,
            )
        )
    return meeting_id


def test_transcription_reads_the_recording_from_the_bucket(
    res: resources.Resources, media: MediaUnderTest, spoken_wav: Path, worker_env: dict[str, str]
) -> None:
    assert res.media.kind == "s3"
    assert not Path(worker_env["MEDIA_DIR"]).exists()  # no directory shared with anyone
    meeting_id = _meeting(res, media, spoken_wav)
    assert transcribe.run(res, meeting_id) is True
    scratch = Path(worker_env["WORKER_SCRATCH_DIR"])
    assert list(scratch.rglob("*.wav")) == []  # the download is gone after the call


def test_an_object_deleted_behind_the_apps_back_is_permanent(
    res: resources.Resources, media: MediaUnderTest, spoken_wav: Path
) -> None:
    meeting_id = _meeting(res, media, spoken_wav)
    media.remove(f"{meeting_id.hex}.wav")
    with pytest.raises(PermanentError, match="deleted outside the app"):
        transcribe.run(res, meeting_id)


def test_a_store_that_refuses_the_key_is_transient_and_named(
    media: MediaUnderTest, spoken_wav: Path, worker_env: dict[str, str]
) -> None:
    good = resources.build(WorkerSettings(**{k.lower(): v for k, v in worker_env.items()}))
    meeting_id = _meeting(good, media, spoken_wav)
    good.close()
    env = {**worker_env, "S3_SECRET_ACCESS_KEY": "not-the-secret-0123456789"}
    res = resources.build(WorkerSettings(**{k.lower(): v for k, v in env.items()}))
    try:
        with pytest.raises(TransientError, match="S3_SECRET_ACCESS_KEY is not the secret"):
            transcribe.run(res, meeting_id)
    finally:
        res.close()
