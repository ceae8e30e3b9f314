"""The pages: meeting list, upload, meeting, delete, search.

Pages read the database with the same queries as the API (the meeting document, search) and
render them on the server, so they work without JavaScript; the scripts only add live
updates, the upload, and the player following the transcript.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from backend.api.deps import MediaDep, ReadConnectionDep, SessionDep, SettingsDep
from backend.api.routes import meetings as meetings_api
from backend.services.audio_types import SUPPORTED
from backend.services.meeting_json import meeting_json
from backend.services.search import search
from backend.web.auth import PageSessionDep
from backend.web.listing import PAGE_SIZE, BadCursorError, Cursor, meeting_page
from backend.web.moments import first_moments
from backend.web.session import CSRF_FIELD, SessionCodec
from backend.web.templating import render
from backend.web.upload_limits import ACCEPTED_EXTENSIONS, ACCEPTED_TYPES, VOCABULARY_MAX
from meetings.models import TITLE_MAX

router = APIRouter(include_in_schema=False)

SEARCH_PAGE_SIZE = 10
SEARCH_QUERY_MAX = 200
SEARCH_OFFSET_MAX = 10_000


def _meeting_gone(raw_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        "This meeting does not exist: it was deleted, or the link is wrong. "
        "The list of meetings shows every meeting there is.",
    )


def _parse_id(raw_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw_id)
    except ValueError:
        raise _meeting_gone(raw_id) from None


@router.get("/")
async def meeting_list(
    request: Request,
    session: PageSessionDep,
    conn: ReadConnectionDep,
    before: str | None = None,
    after: str | None = None,
    deleted: str | None = None,
) -> Response:
    cursor: Cursor | None = None
    direction: Literal["older", "newer"] = "older"
    try:
        if before:
            cursor = Cursor.decode(before)
        elif after:
            cursor, direction = Cursor.decode(after), "newer"
    except BadCursorError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "This page link is damaged (its position in the list cannot be read). "
            "Start again from the newest meetings.",
        ) from None
    page = await meeting_page(conn, cursor, direction)
    return render(
        request,
        "meetings.html",
        session=session,
        page=page,
        page_size=PAGE_SIZE,
        first_page=cursor is None or page.newer is None,
        deleted=deleted == "1",
    )


@router.get("/upload")
async def upload_page(request: Request, session: PageSessionDep, settings: SettingsDep) -> Response:
    return render(
        request,
        "upload.html",
        session=session,
        max_bytes=settings.max_upload_bytes,
        max_mb=settings.max_upload_mb,
        extensions=ACCEPTED_EXTENSIONS,
        types=ACCEPTED_TYPES,
        supported=SUPPORTED,
        title_max=TITLE_MAX,
        vocabulary_max=VOCABULARY_MAX,
    )


def _segment_at(segments: list[dict[str, Any]], moment: float | None) -> int | None:
    """Index of the segment playing at `moment` (the last one starting before it)."""
    if moment is None:
        return None
    found = None
    for index, segment in enumerate(segments):
        if float(segment["start"]) <= moment + 0.001:
            found = index
        else:
            break
    return found


@router.get("/meetings/{meeting_id}")
async def meeting_page_view(
    request: Request,
    session: PageSessionDep,
    conn: ReadConnectionDep,
    meeting_id: str,
    t: Annotated[str | None, Query(description="Start the player here (seconds).")] = None,
) -> Response:
    ident = _parse_id(meeting_id)
    document = await meeting_json(conn, ident)
    if document is None:
        raise _meeting_gone(meeting_id)
    meeting: dict[str, Any] = json.loads(document)
    transcript = meeting.get("transcript") or {}
    segments: list[dict[str, Any]] = transcript.get("segments") or []
    try:
        moment = float(t) if t else None
    except ValueError:
        moment = None
    if moment is not None and not (math.isfinite(moment) and moment >= 0):
        moment = None
    progress = meeting.get("progress")
    return render(
        request,
        "meeting.html",
        session=session,
        meeting=meeting,
        segments=segments,
        moment=moment,
        target_segment=_segment_at(segments, moment),
        progress=progress if isinstance(progress, int | float) else None,
    )


@router.get("/meetings/{meeting_id}/delete")
async def confirm_delete(
    request: Request, session: PageSessionDep, conn: ReadConnectionDep, meeting_id: str
) -> Response:
    ident = _parse_id(meeting_id)
    document = await meeting_json(conn, ident)
    if document is None:
        raise _meeting_gone(meeting_id)
    return render(request, "delete.html", session=session, meeting=json.loads(document))


@router.post("/meetings/{meeting_id}/delete")
async def delete(
    request: Request,
    session: PageSessionDep,
    db: SessionDep,
    media: MediaDep,
    meeting_id: str,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    ident = _parse_id(meeting_id)
    if not SessionCodec.csrf_ok(session, csrf_token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "The delete form was stale or sent from another site, so nothing was deleted. "
            "Reload the meeting page and delete it again.",
        )
    try:
        # The API's own deletion: row, results and recording, in that order.
        await meetings_api.delete_meeting(ident, db, media)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            raise _meeting_gone(meeting_id) from None
        raise
    return RedirectResponse("/?deleted=1", status.HTTP_303_SEE_OTHER)


@router.get("/search")
async def search_page(
    request: Request,
    session: PageSessionDep,
    conn: ReadConnectionDep,
    q: str = "",
    page: str = "1",
) -> Response:
    query = " ".join(q.split())
    number = int(page) if page.isdigit() and int(page) >= 1 else 1
    offset = (number - 1) * SEARCH_PAGE_SIZE
    context: dict[str, Any] = {"query": query, "page": number, "hits": [], "total": 0}
    problem = None
    if len(query) > SEARCH_QUERY_MAX:
        problem = f"The search is {len(query)} characters long; shorten it to {SEARCH_QUERY_MAX}."
    elif offset > SEARCH_OFFSET_MAX:
        problem = "That page is too far; refine the search instead."
    elif query:
        hits, total = await search(conn, query, limit=SEARCH_PAGE_SIZE, offset=offset)
        moments = await first_moments(conn, query, [hit.id for hit in hits])
        context.update(hits=hits, total=total, moments=moments)
    return render(
        request,
        "search.html",
        session=session,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if problem else status.HTTP_200_OK,
        problem=problem,
        page_size=SEARCH_PAGE_SIZE,
        moments=context.pop("moments", {}),
        **context,
    )
