"""Step 1: speech to text through the whisper service."""

from __future__ import annotations

import logging
import time
import uuid

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from meetings.models import Meeting, MeetingStatus, Transcript, TranscriptSegment
from worker import metrics, store
from worker.errors import PermanentError
from worker.resources import Resources

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
        media = res.settings.media_dir / meeting.media_filename
        vocabulary = meeting.vocabulary

    if not media.is_file():
        raise PermanentError(
            f"the recording {meeting.media_filename} is not in MEDIA_DIR ({media.parent}); "
            "check that backend and worker share MEDIA_DIR, then upload again"
        )
    result = res.transcriber.transcribe(
        media, vocabulary=vocabulary, on_progress=ProgressWriter(res, meeting_id)
    )
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
