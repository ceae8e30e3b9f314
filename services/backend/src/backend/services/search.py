"""Search: Postgres full-text (keyword), pgvector nearest chunks (semantic), or both fused.

Keyword: full-text search over transcripts and summaries with Postgres FTS.

`websearch_to_tsquery` accepts what people type into search boxes ("budget -draft",
quoted phrases, `or`) and never raises a syntax error. Ranking uses the weighted tsvector
(title A, summary B, transcript C); snippets come from `ts_headline`, computed only for the
page being returned because it re-parses each document.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

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

RANK_SQL = """
    SELECT m.id, m.title, m.status, m.created_at, ranked.rank
    FROM (
        SELECT d.meeting_id, ts_rank(d.tsv, q.tsq) AS rank
        FROM search_documents AS d,
             websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s) AS q(tsq)
        WHERE d.tsv @@ q.tsq
        ORDER BY rank DESC, d.meeting_id
        LIMIT %(limit)s
    ) AS ranked
    JOIN meetings AS m ON m.id = ranked.meeting_id
    ORDER BY ranked.rank DESC, ranked.meeting_id
"""
"""The keyword list hybrid search fuses: ranks only; headlines are made for the page alone."""

HEADLINES_SQL = """
    SELECT d.meeting_id,
           ts_headline(CAST(%(config)s AS regconfig), concat_ws(E'\\n', d.summary, d.transcript),
                       websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s), %(options)s)
    FROM search_documents AS d
    WHERE d.meeting_id = ANY(%(ids)s)
"""

COUNT_SQL = (
    "SELECT count(*) FROM search_documents "
    "WHERE tsv @@ websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s)"
)


Mode = Literal["keyword", "semantic", "hybrid"]
RRF_K = 60
"""Reciprocal rank fusion's constant: a hit's score is the sum over lists of 1/(RRF_K + rank).
60 is the value of the paper that introduced it; it keeps one list's top hit from drowning
the other list."""
FUSE_DEPTH = 50
"""How many hits of each list are fused: pages past this are not offered in hybrid mode."""
MAX_DISTANCE = 0.8
"""Cosine distance past which a chunk is not "about" the query (similarity under 0.2 with
all-MiniLM-L6-v2: unrelated sentences score 0 to 0.15)."""
EF_SEARCH = 100  # HNSW candidates per query: recall over speed, still a few milliseconds


@dataclass(frozen=True)
class SearchHit:
    id: uuid.UUID
    title: str
    status: str
    created_at: datetime
    rank: float
    snippet: str
    segment: int | None = None
    start_seconds: float | None = None
    matched: str = "keyword"  # keyword | semantic | both


SEMANTIC_SQL = """
    WITH nearest AS (
        SELECT c.meeting_id, c.segment_position, c.start_seconds, c.text,
               c.embedding <=> CAST(%(v)s AS vector) AS distance
        FROM transcript_chunks AS c
        ORDER BY c.embedding <=> CAST(%(v)s AS vector)
        LIMIT %(k)s
    ),
    best AS (
        SELECT DISTINCT ON (meeting_id) * FROM nearest ORDER BY meeting_id, distance
    )
    SELECT m.id, m.title, m.status, m.created_at, best.distance, best.segment_position,
           best.start_seconds, best.text
    FROM best JOIN meetings AS m ON m.id = best.meeting_id
    WHERE best.distance <= %(max_distance)s
    ORDER BY best.distance
    LIMIT %(limit)s
"""

CHUNKS_SQL = """
    SELECT c.meeting_id, m.title, c.segment_position, c.start_seconds, c.text,
           c.embedding <=> CAST(%(v)s AS vector) AS distance
    FROM transcript_chunks AS c JOIN meetings AS m ON m.id = c.meeting_id
    ORDER BY c.embedding <=> CAST(%(v)s AS vector)
    LIMIT %(limit)s
"""

WORDS_SQL = "SELECT numnode(websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s))"


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


async def has_words(conn: AsyncConnection, query: str) -> bool:
    """False for a query of only stop words or symbols: nothing a search can match."""
    cursor = await conn.execute(WORDS_SQL, {"q": query, "config": SEARCH_CONFIG})
    row = await cursor.fetchone()
    return bool(row and row[0])


async def semantic(conn: AsyncConnection, vector: list[float], *, limit: int) -> list[SearchHit]:
    """Meetings whose chunks are nearest the query vector, each at its best chunk."""
    await conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
    params = {
        "v": vector_literal(vector),
        "k": max(EF_SEARCH, limit * 4),
        "limit": limit,
        "max_distance": MAX_DISTANCE,
    }
    cursor = await conn.execute(SEMANTIC_SQL, params)
    return [
        SearchHit(
            id=row[0],
            title=row[1],
            status=row[2],
            created_at=row[3],
            rank=round(1.0 - float(row[4]), 6),
            snippet=html.escape(row[7]),
            segment=int(row[5]),
            start_seconds=float(row[6]),
            matched="semantic",
        )
        for row in await cursor.fetchall()
    ]


@dataclass(frozen=True)
class Passage:
    meeting_id: uuid.UUID
    title: str
    segment: int
    start_seconds: float
    text: str
    similarity: float


async def nearest_chunks(
    conn: AsyncConnection, vector: list[float], *, limit: int
) -> list[Passage]:
    await conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
    cursor = await conn.execute(CHUNKS_SQL, {"v": vector_literal(vector), "limit": limit})
    return [
        Passage(row[0], row[1], int(row[2]), float(row[3]), row[4], 1.0 - float(row[5]))
        for row in await cursor.fetchall()
    ]


# Any of the question's words (an OR of its lexemes), first in the best-matching meetings
# (the GIN-indexed documents), then their best-matching segments.
KEYWORD_PASSAGES_SQL = """
    WITH words AS (
        SELECT lexeme
        FROM unnest(tsvector_to_array(to_tsvector(CAST(%(config)s AS regconfig), %(q)s)))
            AS lexeme
    ),
    query AS (
        SELECT to_tsquery(CAST(%(config)s AS regconfig),
                          coalesce(string_agg(quote_literal(lexeme), ' | '), '')) AS tsq
        FROM words
    ),
    best AS (
        SELECT d.meeting_id
        FROM search_documents AS d, query
        WHERE d.tsv @@ query.tsq
        ORDER BY ts_rank(d.tsv, query.tsq) DESC
        LIMIT 20
    )
    SELECT m.id, m.title, s.position, s.start_seconds, s.text, ts_rank(s.tsv, query.tsq)
    FROM best
    JOIN meetings AS m ON m.id = best.meeting_id
    JOIN transcripts AS t ON t.meeting_id = best.meeting_id
    JOIN transcript_segments AS s ON s.transcript_id = t.id, query
    WHERE s.tsv @@ query.tsq
    ORDER BY 6 DESC, s.start_seconds
    LIMIT %(limit)s
"""


async def keyword_passages(conn: AsyncConnection, question: str, *, limit: int) -> list[Passage]:
    """Segments sharing words with `question`: what `ask` cites when meaning is unavailable.
    `similarity` holds the full-text rank here (not a cosine)."""
    cursor = await conn.execute(
        KEYWORD_PASSAGES_SQL, {"q": question, "config": SEARCH_CONFIG, "limit": limit}
    )
    return [
        Passage(row[0], row[1], int(row[2]), float(row[3]), row[4], float(row[5]))
        for row in await cursor.fetchall()
    ]


async def ranked(conn: AsyncConnection, query: str, *, limit: int) -> list[SearchHit]:
    """The best keyword matches without snippets (hybrid fuses them first)."""
    cursor = await conn.execute(RANK_SQL, {"q": query, "config": SEARCH_CONFIG, "limit": limit})
    return [
        SearchHit(
            id=row[0],
            title=row[1],
            status=row[2],
            created_at=row[3],
            rank=float(row[4]),
            snippet="",
        )
        for row in await cursor.fetchall()
    ]


async def with_headlines(
    conn: AsyncConnection, query: str, hits: list[SearchHit]
) -> list[SearchHit]:
    """Highlighted snippets for the keyword hits of a page (semantic hits keep their chunk)."""
    wanted = [h.id for h in hits if h.matched != "semantic"]
    if not wanted:
        return hits
    params = {"q": query, "config": SEARCH_CONFIG, "ids": wanted, "options": HEADLINE_OPTIONS}
    cursor = await conn.execute(HEADLINES_SQL, params)
    found = {row[0]: highlight(row[1] or "") for row in await cursor.fetchall()}
    return [replace(h, snippet=found.get(h.id, h.snippet)) for h in hits]


def fuse(keyword: list[SearchHit], meaning: list[SearchHit]) -> list[SearchHit]:
    """Reciprocal rank fusion of two ranked lists of meetings; ties keep keyword order. A
    meeting in both keeps the keyword snippet (highlighted) and the semantic moment."""
    scores: dict[uuid.UUID, float] = {}
    hits: dict[uuid.UUID, SearchHit] = {}
    for rank, hit in enumerate(keyword, start=1):
        scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (RRF_K + rank)
        hits[hit.id] = hit
    for rank, hit in enumerate(meaning, start=1):
        scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (RRF_K + rank)
        seen = hits.get(hit.id)
        hits[hit.id] = (
            replace(seen, segment=hit.segment, start_seconds=hit.start_seconds, matched="both")
            if seen
            else hit
        )
    order = sorted(hits, key=lambda i: -scores[i])
    return [replace(hits[i], rank=round(scores[i], 6)) for i in order]


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
