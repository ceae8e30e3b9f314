"""Full-text search over transcripts and summaries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api import API_PREFIX
from backend.api.deps import ReadConnectionDep
from backend.schemas import SearchHitOut, SearchPage
from backend.services.search import search

router = APIRouter(prefix=API_PREFIX, tags=["search"])


@router.get("/search", summary="Search meetings; best matches first")
async def search_meetings(
    conn: ReadConnectionDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"\S",
            description='Web-search syntax: words, "quoted phrases", -excluded, or.',
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchPage:
    hits, total = await search(conn, q, limit=limit, offset=offset)
    return SearchPage(
        query=q,
        items=[SearchHitOut.model_validate(hit, from_attributes=True) for hit in hits],
        total=total,
        limit=limit,
        offset=offset,
    )
