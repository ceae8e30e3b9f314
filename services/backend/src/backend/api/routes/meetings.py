"""Meetings: upload a recording, follow its progress, list and delete."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import func, select

from backend.api import API_PREFIX
from backend.api.deps import MediaDep, ReadConnectionDep, SessionDep, SettingsDep, TaskQueueDep
from backend.schemas import (
    ErrorBody,
    MeetingCreated,
    MeetingOut,
    MeetingPage,
    MeetingSummaryOut,
    Status,
)
from backend.services.meeting_json import meeting_json
from backend.services.task_queue import EnqueueError, enqueue_meeting
from backend.services.uploads import UploadError, receive_upload
from meetings.models import TITLE_MAX, VOCABULARY_MAX, Meeting, MeetingStatus
from recordings import MediaStore, StoreError

logger = logging.getLogger(__name__)
router = APIRouter(prefix=f"{API_PREFIX}/meetings", tags=["meetings"])


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "WAV, MP3, OGG, FLAC, M4A/MP4 or WebM recording.",
                        },
                        "title": {"type": "string", "maxLength": TITLE_MAX},
                        "vocabulary": {
                            "type": "string",
                            "maxLength": VOCABULARY_MAX,
                            "description": "Names and jargon the speech engine should expect "
                            "(comma-separated), e.g. 'Przybylski, Kubernetes, OKRs'.",
                        },
                    },
                }
            }
        },
    }
}


def _not_found(meeting_id: uuid.UUID) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"No meeting with id {meeting_id}; list existing meetings with GET /api/v1/meetings.",
    )


async def _discard(media: MediaStore, name: str) -> None:
    """Remove a recording nobody will reference; an orphan left by a store error is harmless."""
    try:
        await anyio.to_thread.run_sync(media.delete, name)
    except StoreError as exc:
        logger.warning("could not remove the unused recording %s: %s", name, exc)


def _title(fields: dict[str, str], original_filename: str | None) -> str:
    title = " ".join(fields.get("title", "").split())
    if not title and original_filename:
        title = original_filename.rsplit(".", 1)[0]
    return title or "Untitled meeting"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload a recording; processing starts in the background",
    openapi_extra=_UPLOAD_BODY,
    responses={
        413: {"model": ErrorBody, "description": "Larger than MAX_UPLOAD_MB"},
        415: {"model": ErrorBody, "description": "Not a supported audio format"},
        422: {"model": ErrorBody, "description": "Malformed form"},
        503: {"model": ErrorBody, "description": "Task queue or recordings store unavailable"},
    },
)
async def create_meeting(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    media: MediaDep,
) -> MeetingCreated:
    try:
        upload = await receive_upload(request, media, settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.detail) from None

    title = _title(upload.fields, upload.original_filename)
    vocabulary = " ".join(upload.fields.get("vocabulary", "").split()) or None
    for name, value, limit in (
        ("title", title, TITLE_MAX),
        ("vocabulary", vocabulary or "", VOCABULARY_MAX),
    ):
        problem = (
            f"`{name}` is {len(value)} characters; shorten it to at most {limit}."
            if len(value) > limit
            else f"`{name}` holds a NUL character; send plain text."
            if "\x00" in value
            else None
        )
        if problem:
            await _discard(media, upload.filename)
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
    meeting = Meeting(
        id=uuid.uuid4(),
        title=title,
        status=MeetingStatus.QUEUED.value,
        media_filename=upload.filename,
        original_filename=upload.original_filename,
        content_type=upload.audio_type.mime,
        size_bytes=upload.size,
        vocabulary=vocabulary,
    )
    session.add(meeting)
    try:
        await session.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _discard(media, upload.filename)
        raise

    # Enqueue only after the commit: a worker must never receive an id it cannot read yet.
    try:
        await anyio.to_thread.run_sync(enqueue_meeting, task_queue, meeting.id)
    except EnqueueError as exc:
        logger.error("could not enqueue meeting %s: %s", meeting.id, exc)
        # A row nobody will ever process is worse than none: undo, so a retry is clean.
        await session.delete(meeting)
        await session.commit()
        await _discard(media, upload.filename)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The task queue (Redis) is unavailable, so nothing was stored; "
            "retry the upload in a moment or check `inv health`.",
        ) from None

    url = f"/api/v1/meetings/{meeting.id}"
    response.headers["Location"] = url
    return MeetingCreated(id=meeting.id, status="queued", url=url)


@router.get("", summary="List meetings, newest first")
async def list_meetings(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="Only meetings in this state.")
    ] = None,
) -> MeetingPage:
    base = select(Meeting)
    count = select(func.count()).select_from(Meeting)
    if status_filter is not None:
        base = base.where(Meeting.status == status_filter)
        count = count.where(Meeting.status == status_filter)
    total = (await session.execute(count)).scalar_one()
    rows = await session.scalars(
        base.order_by(Meeting.created_at.desc(), Meeting.id.desc()).limit(limit).offset(offset)
    )
    return MeetingPage(
        items=[MeetingSummaryOut.model_validate(m) for m in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{meeting_id}",
    summary="A meeting with its transcript, summary and action items",
    response_model=MeetingOut,
    responses={404: {"model": ErrorBody}},
)
async def get_meeting(meeting_id: uuid.UUID, conn: ReadConnectionDep) -> Response:
    document = await meeting_json(conn, meeting_id)
    if document is None:
        raise _not_found(meeting_id)
    # Postgres built the MeetingOut document (see services/meeting_json.py): send it as is.
    return Response(document, media_type="application/json")


@router.post(
    "/{meeting_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run a failed meeting's pipeline again",
    description="Only a `failed` meeting can be retried: it goes back to `queued` and what "
    "was already stored (a transcript, say) is kept, so only the missing steps run.",
    responses={
        404: {"model": ErrorBody, "description": "No such meeting"},
        409: {"model": ErrorBody, "description": "The meeting is not failed"},
        503: {"model": ErrorBody, "description": "Task queue unavailable; still failed"},
    },
)
async def retry_meeting(
    meeting_id: uuid.UUID, response: Response, session: SessionDep, task_queue: TaskQueueDep
) -> MeetingCreated:
    # Locked, so two retries at once cannot both queue it.
    meeting = await session.get(Meeting, meeting_id, with_for_update=True)
    if meeting is None:
        raise _not_found(meeting_id)
    current = meeting.status
    if current != MeetingStatus.FAILED.value:
        await session.rollback()
        doing = (
            "it is done; nothing to retry"
            if current == MeetingStatus.DONE.value
            else "it is still being processed; wait for it to finish or fail"
        )
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Meeting {meeting_id} is {current}: only a failed meeting can be retried, "
            f"and {doing}.",
        )
    previous = (meeting.error, meeting.completed_at)
    meeting.status = MeetingStatus.QUEUED.value
    meeting.error = None
    meeting.completed_at = None
    meeting.lease_until = None
    meeting.recoveries = 0  # a fresh run gets its full allowance of recoveries
    await session.commit()

    try:
        await anyio.to_thread.run_sync(enqueue_meeting, task_queue, meeting_id)
    except EnqueueError as exc:
        logger.error("could not enqueue the retry of meeting %s: %s", meeting_id, exc)
        meeting.status = MeetingStatus.FAILED.value
        meeting.error, meeting.completed_at = previous
        await session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The task queue (Redis) is unavailable, so the meeting stays failed; retry in a "
            "moment or check `inv health`.",
        ) from None

    url = f"/api/v1/meetings/{meeting_id}"
    response.headers["Location"] = url
    return MeetingCreated(id=meeting_id, status="queued", url=url)


@router.delete(
    "/{meeting_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a meeting, its results and its recording",
    responses={404: {"model": ErrorBody}},
)
async def delete_meeting(meeting_id: uuid.UUID, session: SessionDep, media: MediaDep) -> None:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise _not_found(meeting_id)
    name = meeting.media_filename
    await session.delete(meeting)
    await session.commit()
    # After the commit: if removing fails the meeting is still gone, and an orphan recording
    # is harmless, whereas a row pointing at a deleted recording would break the worker.
    try:
        await anyio.to_thread.run_sync(media.delete, name)
    except (StoreError, OSError) as exc:
        logger.warning("meeting %s deleted but its recording %s remains: %s", meeting_id, name, exc)
