"""Step 2: summary, action items and topics from the llm service."""

from __future__ import annotations

import logging
import re
import uuid

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from llm_service.schemas import AnalyzeResponse
from meetings.models import ActionItem, MeetingStatus, Summary, Transcript, TranscriptSegment
from worker import store
from worker.errors import PermanentError
from worker.resources import Resources

logger = logging.getLogger(__name__)

NO_SPEECH = "No speech was detected in the recording."
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002]")


def analysis_text(text: str, segments: list[str]) -> str:
    """The transcript as the llm should read it.

    Some engines (pocketsphinx) emit lower-case text without punctuation, which hides the
    sentence boundaries that summarisers and action-item finders rely on. Their segments are
    utterances split at pauses, so each becomes a sentence. Punctuated text is left as is.
    """
    if _SENTENCE_END.search(text) or not segments:
        return text
    sentences = []
    for segment in segments:
        sentence = segment.strip()
        if sentence:
            sentence = sentence[0].upper() + sentence[1:]
            sentences.append(sentence if sentence[-1] in ".!?" else f"{sentence}.")
    return " ".join(sentences) or text


def run(res: Resources, meeting_id: uuid.UUID) -> bool:
    """Analyze the transcript; False when a summary already existed."""
    with res.sessions() as session, session.begin():
        meeting = store.active_meeting(session, meeting_id)
        if session.scalar(select(Summary.id).where(Summary.meeting_id == meeting_id)) is not None:
            return False
        transcript = session.scalar(select(Transcript).where(Transcript.meeting_id == meeting_id))
        if transcript is None:
            raise PermanentError("analysis ran before transcription stored a transcript")
        store.advance(session, meeting_id, MeetingStatus.ANALYZING)
        segments = session.scalars(
            select(TranscriptSegment.text)
            .where(TranscriptSegment.transcript_id == transcript.id)
            .order_by(TranscriptSegment.position)
        ).all()
        text = analysis_text(transcript.text, list(segments))
        language = transcript.language
        reference_date = meeting.created_at.date()

    if text.strip():
        analysis = res.analyzer.analyze(
            text,
            language=language if language and _LANGUAGE_TAG.match(language) else None,
            reference_date=reference_date,
        )
    else:
        # Silence is a result, not an error: there is nothing for the llm to read.
        analysis = AnalyzeResponse(
            summary=NO_SPEECH, action_items=[], topics=[], engine="none", model="none"
        )

    with res.sessions() as session, session.begin():
        summary_id = session.scalar(
            pg_insert(Summary)
            .values(
                meeting_id=meeting_id,
                text=analysis.summary,
                topics=analysis.topics,
                engine=analysis.engine,
                model=analysis.model,
                note=analysis.note,
            )
            .on_conflict_do_nothing(index_elements=[Summary.meeting_id])
            .returning(Summary.id)
        )
        if summary_id is None:  # a concurrent duplicate stored it (and its items) first
            return False
        if analysis.action_items:
            session.execute(
                insert(ActionItem),
                [
                    {
                        "meeting_id": meeting_id,
                        "position": position,
                        "text": item.text,
                        "owner": item.owner,
                        "due": item.due,
                    }
                    for position, item in enumerate(analysis.action_items)
                ],
            )
    logger.info(
        "analyzed meeting %s: %d action item(s) (%s)%s",
        meeting_id,
        len(analysis.action_items),
        analysis.engine,
        f"; {analysis.note}" if analysis.note else "",
    )
    return True
