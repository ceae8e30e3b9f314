"""Downloads: the transcript (SRT, WebVTT, text, JSON), Markdown notes and the recording.

Transcript formats are served as soon as the transcript exists (status `analyzing` or
`done`, or a meeting whose analysis failed after transcription): subtitles do not need the
summary. The notes need the whole analysis, so they wait for `done`. Both answer 409 with
what to do while that is not the case.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse

from backend.api import API_PREFIX
from backend.api.deps import MediaDep, ReadConnectionDep
from backend.schemas import ErrorBody, MeetingOut
from backend.services.exports import (
    TRANSCRIPT_FORMATS,
    Export,
    TranscriptFormat,
    content_disposition,
    notes_markdown,
    transcript_export,
)
from backend.services.meeting_json import meeting_json
from backend.services.recording_response import recording_response
from recordings import RecordingMissingError, StoreUnavailableError, safe_name

router = APIRouter(prefix=f"{API_PREFIX}/meetings", tags=["exports"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such meeting"},
    409: {"model": ErrorBody, "description": "Not processed far enough yet, or failed"},
}


def _not_found(meeting_id: uuid.UUID) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"No meeting with id {meeting_id}; list existing meetings with GET /api/v1/meetings.",
    )


async def _meeting(conn: ReadConnectionDep, meeting_id: uuid.UUID) -> MeetingOut:
    document = await meeting_json(conn, meeting_id)
    if document is None:
        raise _not_found(meeting_id)
    return MeetingOut.model_validate_json(document)


def _not_ready(meeting: MeetingOut, needs: str) -> HTTPException:
    if meeting.status == "failed":
        detail = (
            f"Meeting {meeting.id} failed before its {needs} was made ({meeting.error}); "
            "upload the recording again (POST /api/v1/meetings)."
        )
    elif needs == "transcript":
        detail = (
            f"Meeting {meeting.id} is still {meeting.status}: its transcript is not ready. "
            f"Poll GET /api/v1/meetings/{meeting.id} and retry once its status is "
            "`analyzing` or `done`."
        )
    else:
        detail = (
            f"Meeting {meeting.id} is still {meeting.status}: its {needs} are not ready. "
            f"Poll GET /api/v1/meetings/{meeting.id} and retry once its status is `done`."
        )
    return HTTPException(status.HTTP_409_CONFLICT, detail)


def _download(export: Export) -> Response:
    return Response(
        export.body,
        media_type=export.media_type,
        headers={"Content-Disposition": content_disposition(export.filename)},
    )


@router.get(
    "/{meeting_id}/transcript",
    summary="Download the transcript as SRT, WebVTT, plain text or JSON",
    responses={**_ERRORS, 200: {"description": "The transcript file (an attachment)"}},
    response_class=Response,
)
async def export_transcript(
    meeting_id: uuid.UUID,
    conn: ReadConnectionDep,
    format: Annotated[
        TranscriptFormat,
        Query(description=f"One of: {', '.join(TRANSCRIPT_FORMATS)}."),
    ] = "txt",
) -> Response:
    meeting = await _meeting(conn, meeting_id)
    if meeting.transcript is None:
        raise _not_ready(meeting, "transcript")
    return _download(transcript_export(meeting, format))


@router.get(
    "/{meeting_id}/notes.md",
    summary="Download meeting notes as Markdown: summary, action items, topics, transcript",
    responses={**_ERRORS, 200: {"description": "The notes (an attachment)"}},
    response_class=Response,
)
async def export_notes(meeting_id: uuid.UUID, conn: ReadConnectionDep) -> Response:
    meeting = await _meeting(conn, meeting_id)
    if meeting.status != "done":
        raise _not_ready(meeting, "summary and action items")
    return _download(notes_markdown(meeting))


_RECORDING_SQL = "SELECT media_filename, content_type FROM meetings WHERE id = %(id)s"


@router.head("/{meeting_id}/audio", include_in_schema=False)
@router.get(
    "/{meeting_id}/audio",
    summary="Stream the recording (HTTP Range requests supported, for seeking players)",
    responses={
        404: {"model": ErrorBody, "description": "No such meeting, or its file is missing"},
        206: {"description": "The requested byte range"},
        503: {"model": ErrorBody, "description": "The recordings store is unavailable"},
    },
    response_class=FileResponse,
)
async def recording(
    request: Request, meeting_id: uuid.UUID, conn: ReadConnectionDep, media: MediaDep
) -> Response:
    cursor = await conn.execute(_RECORDING_SQL, {"id": meeting_id})
    row = await cursor.fetchone()
    if row is None:
        raise _not_found(meeting_id)
    media_filename, content_type = str(row[0]), str(row[1])
    # The name is generated at upload (never the client's); refuse anything that is not a
    # plain file name anyway, so a bad row can never read outside the media directory.
    missing = HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The recording of meeting {meeting_id} is missing from the media directory "
        "(MEDIA_DIR) or bucket (S3_BUCKET); restore it from a backup (`inv backup.restore`).",
    )
    if not safe_name(media_filename):
        raise missing
    try:
        return await recording_response(request, media, media_filename, content_type)
    except RecordingMissingError:
        raise missing from None
    except StoreUnavailableError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"The recordings store is unavailable ({exc.problem}); retry in a moment or "
            "check `inv health`.",
        ) from None
