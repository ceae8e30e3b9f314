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

from psycopg import AsyncConnection

from meetings.models import SEARCH_CONFIG

# Control characters cannot appear in transcripts, so after HTML-escaping the snippet they
# can be swapped for <mark> safely: the only markup in a snippet is ours.
_START, _STOP = "\x02", "\x03"
HEADLINE_OPTIONS = (
    f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)

SEARCH_SQL = """
    WITH query AS (SELECT websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s) AS tsq),
    page AS (
        SELECT d.meeting_id, ts_rank(d.tsv, query.tsq) AS rank, count(*) OVER () AS total
        FROM search_documents AS d, query
        WHERE d.tsv @@ query.tsq
        ORDER BY rank DESC, d.meeting_id
        LIMIT %(limit)s OFFSET %(offset)s
    )
    SELECT m.id, m.title, m.status, m.created_at, page.rank, page.total,
           ts_headline(CAST(%(config)s AS regconfig), concat_ws(E'\\n', d.summary, d.transcript),
                       query.tsq, %(options)s) AS snippet
    FROM page
    JOIN meetings AS m ON m.id = page.meeting_id
    JOIN search_documents AS d ON d.meeting_id = page.meeting_id
    CROSS JOIN query
    ORDER BY page.rank DESC, page.meeting_id
"""

COUNT_SQL = (
    "SELECT count(*) FROM search_documents "
    "WHERE tsv @@ websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s)"
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
    conn: AsyncConnection, query: str, *, limit: int, offset: int
) -> tuple[list[SearchHit], int]:
    """Best matches first and the total number of matches."""
    params = {
        "q": query,
        "config": SEARCH_CONFIG,
        "limit": limit,
        "offset": offset,
        "options": HEADLINE_OPTIONS,
    }
    async with conn.cursor() as cursor:
        await cursor.execute(SEARCH_SQL, params)
        rows = await cursor.fetchall()
        if rows:
            total = int(rows[0][5])
        else:
            # An empty page past the end still reports how many matches exist.
            await cursor.execute(COUNT_SQL, {"q": query, "config": SEARCH_CONFIG})
            counted = await cursor.fetchone()
            total = int(counted[0]) if counted else 0
    hits = [
        SearchHit(
            id=meeting_id,
            title=title,
            status=status,
            created_at=created_at,
            rank=float(rank),
            snippet=highlight(snippet or ""),
        )
        for meeting_id, title, status, created_at, rank, _total, snippet in rows
    ]
    return hits, total
