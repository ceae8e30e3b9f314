"""Full-text search over transcripts and summaries with Postgres FTS.

`websearch_to_tsquery` accepts what people type into search boxes ("budget -draft",
quoted phrases, `or`) and never raises a syntax error. Ranking uses the weighted tsvector
(title A, summary B, transcript C); snippets come from `ts_headline`, computed only for the
page being returned because it re-parses each document.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import SEARCH_CONFIG

# Control characters cannot appear in transcripts, so after HTML-escaping the snippet they
# can be swapped for <mark> safely: the only markup in a snippet is ours.
_START, _STOP = "\x02", "\x03"
HEADLINE_OPTIONS = (
    f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)

_SEARCH_SQL = text(
    """
    WITH query AS (SELECT websearch_to_tsquery(CAST(:config AS regconfig), :q) AS tsq),
    page AS (
        SELECT d.meeting_id, ts_rank(d.tsv, query.tsq) AS rank, count(*) OVER () AS total
        FROM search_documents AS d, query
        WHERE d.tsv @@ query.tsq
        ORDER BY rank DESC, d.meeting_id
        LIMIT :limit OFFSET :offset
    )
    SELECT m.id, m.title, m.status, m.created_at, page.rank, page.total,
           ts_headline(CAST(:config AS regconfig), concat_ws(E'\\n', d.summary, d.transcript),
                       query.tsq, :options) AS snippet
    FROM page
    JOIN meetings AS m ON m.id = page.meeting_id
    JOIN search_documents AS d ON d.meeting_id = page.meeting_id
    CROSS JOIN query
    ORDER BY page.rank DESC, page.meeting_id
    """
)

_COUNT_SQL = text(
    "SELECT count(*) FROM search_documents "
    "WHERE tsv @@ websearch_to_tsquery(CAST(:config AS regconfig), :q)"
)


@dataclass(frozen=True)
class SearchHit:
    id: uuid.UUID
    title: str
    status: str
    created_at: datetime
    rank: float
    snippet: str


def highlight(raw: str) -> str:
    """HTML-escape a headline, then turn our selection markers into <mark> tags."""
    return html.escape(raw).replace(_START, "<mark>").replace(_STOP, "</mark>")


async def search(
    session: AsyncSession, query: str, *, limit: int, offset: int
) -> tuple[list[SearchHit], int]:
    """Best matches first and the total number of matches."""
    params = {
        "q": query,
        "config": SEARCH_CONFIG,
        "limit": limit,
        "offset": offset,
        "options": HEADLINE_OPTIONS,
    }
    rows = (await session.execute(_SEARCH_SQL, params)).all()
    if rows:
        total = int(rows[0].total)
    else:
        # An empty page past the end still reports how many matches exist.
        counted = await session.execute(_COUNT_SQL, {"q": query, "config": SEARCH_CONFIG})
        total = int(counted.scalar_one())
    hits = [
        SearchHit(
            id=row.id,
            title=row.title,
            status=row.status,
            created_at=row.created_at,
            rank=float(row.rank),
            snippet=highlight(row.snippet or ""),
        )
        for row in rows
    ]
    return hits, total
