"""Step 1: speech to text through the whisper service.

The recording comes from the recordings store (a directory, or a bucket: downloaded into
scratch space for the call, removed after), never from the backend's disk.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from meetings.models import Meeting, MeetingStatus, Transcript, TranscriptSegment
from recordings import RecordingMissingError, StoreUnavailableError
from worker import metrics, store
from worker.errors import PermanentError, TransientError
from worker.resources import Resources
from worker.transcriber import TranscriptResult

logger = logging.getLogger(__name__)

# The API shows how far a transcription is; one small UPDATE a second at most is plenty, and
# the whisper service reports at least every 30 s of audio (usually every segment).
PROGRESS_INTERVAL_S = 1.0


class ProgressWriter:
    """Records the fraction of audio transcribed on the meeting row, throttled. A failed write
    is logged, never raised: progress is a courtesy, the transcript is the work."""

    def __init__(self, res: Resources, meeting_id: uuid.UUID) -> None:
        self.res = res
        self.meeting_id = meeting_id
        self.last = 0.0

    def __call__(self, done: float, total: float) -> None:
        now = time.monotonic()
        if total <= 0 or (now - self.last < PROGRESS_INTERVAL_S and done < total):
            return
        self.last = now
        fraction = round(min(1.0, max(0.0, done / total)), 3)
        try:
            with self.res.sessions() as session, session.begin():
                session.execute(
                    update(Meeting)
                    .where(
                        Meeting.id == self.meeting_id,
                        Meeting.status == MeetingStatus.TRANSCRIBING.value,
                    )
                    .values(progress=fraction)
                )
        except Exception as exc:  # the database blinked: the next report will try again
            logger.warning("meeting %s: progress not recorded: %s", self.meeting_id, exc)


def run(res: Resources, meeting_id: uuid.UUID) -> bool:
    """Transcribe the meeting's recording; False when a transcript already existed."""
    with res.sessions() as session, session.begin():
        meeting = store.active_meeting(session, meeting_id)
        existing = session.scalar(select(Transcript.id).where(Transcript.meeting_id == meeting_id))
        if existing is not None:
            return False
        store.advance(session, meeting_id, MeetingStatus.TRANSCRIBING)
        name = meeting.media_filename
        vocabulary = meeting.vocabulary

    result = _transcribe(res, meeting_id, name, vocabulary)
    logger.info(
        "transcribed meeting %s: %.1fs of audio in %.1fs (%s)",
        meeting_id,
        result.audio_seconds,
        result.processing_seconds,
        result.engine,
    )

    with res.sessions() as session, session.begin():
        transcript_id = session.scalar(
            pg_insert(Transcript)
            .values(
                meeting_id=meeting_id,
                text=result.text,
                language=result.language,
                language_probability=result.language_probability,
                engine=result.engine,
                model=result.model,
                audio_seconds=result.audio_seconds,
                processing_seconds=result.processing_seconds,
            )
            .on_conflict_do_nothing(index_elements=[Transcript.meeting_id])
            .returning(Transcript.id)
        )
        if transcript_id is None:  # a concurrent duplicate stored it first
            return False
        if result.segments:
            session.execute(
                insert(TranscriptSegment),
                [
                    {
                        "transcript_id": transcript_id,
                        "position": position,
                        "start_seconds": start,
                        "end_seconds": end,
                        "text": text,
                        "words": (result.words[position] or None)
                        if position < len(result.words)
                        else None,
                    }
                    for position, (start, end, text) in enumerate(result.segments)
                ],
            )
        # The transcript is visible from now on; what the meeting waits for next is analysis.
        store.advance(session, meeting_id, MeetingStatus.ANALYZING)
        session.execute(update(Meeting).where(Meeting.id == meeting_id).values(progress=1.0))
    metrics.audio_transcribed(result.audio_seconds, result.engine)
    return True


def _transcribe(
    res: Resources, meeting_id: uuid.UUID, name: str, vocabulary: str | None
) -> TranscriptResult:
    scratch = res.settings.worker_scratch_dir or Path(tempfile.gettempdir())
    try:
        with res.media.fetch(name, scratch) as path:
            return res.transcriber.transcribe(
                path, vocabulary=vocabulary, on_progress=ProgressWriter(res, meeting_id)
            )
    except RecordingMissingError as exc:
        where = res.media.describe()
        hint = (
            "check that backend and worker share MEDIA_DIR (or use MEDIA_STORE=s3), then "
            "upload again"
            if res.media.kind == "local"
            else "it was deleted outside the app: restore it from a backup or upload again"
        )
        raise PermanentError(f"the recording {name} is missing from {where}; {hint}") from exc
    except StoreUnavailableError as exc:
        # The store is down or refuses us: retry later (bounded), saying which.
        raise TransientError(f"the recordings store: {exc.problem}") from exc
    except OSError as exc:
        raise TransientError(f"could not download {name} into {scratch}: {exc}") from exc
