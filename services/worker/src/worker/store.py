"""Database reads and writes shared by the steps: status moves only forward."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from meetings.models import Meeting, MeetingStatus
from worker.errors import MeetingFinishedError, MeetingGoneError

ERROR_MAX = 2000
_FINAL = (MeetingStatus.DONE.value, MeetingStatus.FAILED.value)


def active_meeting(session: Session, meeting_id: uuid.UUID) -> Meeting:
    """The meeting if it still needs work, else MeetingGoneError / MeetingFinishedError."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise MeetingGoneError(f"meeting {meeting_id} no longer exists")
    if meeting.status in _FINAL:
        raise MeetingFinishedError(f"meeting {meeting_id} is already {meeting.status}")
    return meeting


def advance(session: Session, meeting_id: uuid.UUID, status: MeetingStatus) -> None:
    """Move to `status` unless the meeting already got there, further, or finished."""
    order = [s.value for s in MeetingStatus]
    earlier = order[: order.index(status.value)]
    session.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.status.in_(earlier))
        .values(status=status.value)
    )


def mark_done(session: Session, meeting_id: uuid.UUID) -> datetime | None:
    """Finish the meeting; its upload time when this call finished it, else None."""
    uploaded_at: datetime | None = session.scalar(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.status.not_in(_FINAL))
        .values(status=MeetingStatus.DONE.value, error=None, completed_at=func.now())
        .returning(Meeting.created_at)
    )
    return uploaded_at


def lock_unfinished(session: Session, meeting_id: uuid.UUID) -> datetime | None:
    """Lock the meeting's row; its upload time if it is not done or failed yet, else None."""
    row = session.execute(
        select(Meeting.status, Meeting.created_at).where(Meeting.id == meeting_id).with_for_update()
    ).first()
    if row is None or row.status in _FINAL:
        return None
    return row.created_at


def mark_failed(session: Session, meeting_id: uuid.UUID, reason: str) -> bool:
    """Record the failure and why; a meeting that is already done stays done."""
    result = session.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.DONE.value)
        .values(
            status=MeetingStatus.FAILED.value, error=reason[:ERROR_MAX], completed_at=func.now()
        )
    )
    return bool(getattr(result, "rowcount", 0))


def take_lease(session: Session, meeting_id: uuid.UUID, seconds: float) -> None:
    """Mark the meeting as held by a running step for `seconds` (the hard time limit: the step
    cannot outlive it). Database time on both sides, so worker clocks do not matter."""
    session.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.status.not_in(_FINAL))
        .values(lease_until=func.now() + timedelta(seconds=seconds), updated_at=func.now())
    )


def release_lease(session: Session, meeting_id: uuid.UUID) -> None:
    """The step ended: the meeting is free for the next one (and, if it got lost, the sweeper)."""
    session.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.lease_until.is_not(None))
        .values(lease_until=None, updated_at=func.now())
    )
