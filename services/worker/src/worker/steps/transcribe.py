"""Step 1: speech to text through the whisper service."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from meetings.models import MeetingStatus, Transcript, TranscriptSegment
from worker import metrics, store
from worker.errors import PermanentError
from worker.resources import Resources

logger = logging.getLogger(__name__)


def run(res: Resources, meeting_id: uuid.UUID) -> bool:
    """Transcribe the meeting's recording; False when a transcript already existed."""
    with res.sessions() as session, session.begin():
        meeting = store.active_meeting(session, meeting_id)
        existing = session.scalar(select(Transcript.id).where(Transcript.meeting_id == meeting_id))
        if existing is not None:
            return False
        store.advance(session, meeting_id, MeetingStatus.TRANSCRIBING)
        media = res.settings.media_dir / meeting.media_filename

    if not media.is_file():
        raise PermanentError(
            f"the recording {meeting.media_filename} is not in MEDIA_DIR ({media.parent}); "
            "check that backend and worker share MEDIA_DIR, then upload again"
        )
    result = res.transcriber.transcribe(media)
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
                    }
                    for position, (start, end, text) in enumerate(result.segments)
                ],
            )
        # The transcript is visible from now on; what the meeting waits for next is analysis.
        store.advance(session, meeting_id, MeetingStatus.ANALYZING)
    metrics.audio_transcribed(result.audio_seconds, result.engine)
    return True
