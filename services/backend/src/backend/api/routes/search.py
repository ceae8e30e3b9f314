"""Search meetings by keyword, by meaning, or both (hybrid, the default)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request

from backend.api import API_PREFIX
from backend.api.deps import ReadConnectionDep
from backend.schemas import SearchHitOut, SearchPage
from backend.services import search as searching
from backend.services.meaning import MeaningUnavailableError, QueryEmbedder
from backend.web.moments import first_moments

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["search"])


@router.get("/search", summary="Search meetings; best matches first")
async def search_meetings(
    request: Request,
    conn: ReadConnectionDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            # Something to look for, and no NUL character (Postgres text cannot hold one).
            pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",
            description='Web-search syntax: words, "quoted phrases", -excluded, or.',
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    mode: Annotated[
        searching.Mode,
        Query(
            description="keyword: full-text; semantic: by meaning (embeddings); hybrid: both, "
            "fused by reciprocal rank (falls back to keyword, saying why, when embeddings are "
            "unavailable)."
        ),
    ] = "hybrid",
) -> SearchPage:
    note = None
    if mode != "keyword" and not await searching.has_words(conn, q):
        return SearchPage(
            query=q, items=[], total=0, limit=limit, offset=offset, mode=mode,
            note="the query has only stop words or symbols: nothing to search for",
        )  # fmt: skip
    meaning: list[searching.SearchHit] = []
    if mode != "keyword":
        embedder: QueryEmbedder = request.app.state.embedder
        try:
            vector = await embedder.embed(q)
            depth = searching.FUSE_DEPTH if mode == "hybrid" else offset + limit
            meaning = await searching.semantic(conn, vector, limit=depth)
        except MeaningUnavailableError as exc:
            note = f"search by meaning is unavailable ({exc}); keyword results only"
            log.warning("%s", note)
            mode = "keyword"
    if mode == "semantic":
        hits, total = meaning[offset : offset + limit], len(meaning)
    elif mode == "keyword":
        hits, total = await searching.search(conn, q, limit=limit, offset=offset)
    else:
        keyword = await searching.ranked(conn, q, limit=searching.FUSE_DEPTH)
        fused = searching.fuse(keyword, meaning)
        hits, total = fused[offset : offset + limit], len(fused)
        hits = await searching.with_headlines(conn, q, hits)
    # Keyword hits point at the first segment that matches on its own (when one does).
    need_moment = [h.id for h in hits if h.segment is None]
    moments = await first_moments(conn, q, need_moment) if need_moment else {}
    items = []
    for hit in hits:
        out = SearchHitOut.model_validate(hit, from_attributes=True)
        if hit.segment is None and hit.id in moments:
            out.start_seconds, out.segment = moments[hit.id]
        items.append(out)
    return SearchPage(
        query=q, items=items, total=total, limit=limit, offset=offset, mode=mode, note=note
    )
