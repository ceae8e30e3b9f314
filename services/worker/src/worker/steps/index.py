"""Step 3: make the meeting searchable, then mark it done."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from meetings.models import SearchDocument, Summary, Transcript
from worker import metrics, store
from worker.resources import Resources


def run(res: Resources, meeting_id: uuid.UUID) -> None:
    with res.sessions() as session, session.begin():
        meeting = store.active_meeting(session, meeting_id)
        transcript = session.scalar(
            select(Transcript.text).where(Transcript.meeting_id == meeting_id)
        )
        summary = session.scalar(select(Summary.text).where(Summary.meeting_id == meeting_id))
        values = {
            "meeting_id": meeting_id,
            "title": meeting.title,
            "summary": summary or "",
            "transcript": transcript or "",
        }
        # An upsert: re-indexing (redelivery, or a future re-run) replaces the document.
        statement = pg_insert(SearchDocument).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[SearchDocument.meeting_id],
                set_={
                    "title": statement.excluded.title,
                    "summary": statement.excluded.summary,
                    "transcript": statement.excluded.transcript,
                    "updated_at": func.now(),
                },
            )
        )
        uploaded_at = store.mark_done(session, meeting_id)
    if uploaded_at is not None:
        metrics.meeting_finished("done", uploaded_at)
