"""Where in a recording a search hit was said: the first transcript segment that matches.

The search API ranks whole meetings; the page links a hit to the moment it was said when one
segment on its own matches the query (a phrase split across two segments matches none, and
the link then opens the meeting at its start). Only the page's hits are looked at, and only
their segments, so the cost does not grow with the number of meetings.
"""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

from meetings.models import SEARCH_CONFIG

MOMENTS_SQL = """
    SELECT DISTINCT ON (t.meeting_id) t.meeting_id, s.start_seconds, s.position
    FROM transcripts AS t
    JOIN transcript_segments AS s ON s.transcript_id = t.id
    WHERE t.meeting_id = ANY(%(ids)s)
      AND s.tsv @@ websearch_to_tsquery(CAST(%(config)s AS regconfig), %(q)s)
    ORDER BY t.meeting_id, s.position
"""


async def first_moments(
    conn: AsyncConnection, query: str, meeting_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[float, int]]:
    """meeting id -> (start seconds, segment position) of its first matching segment."""
    if not meeting_ids:
        return {}
    cursor = await conn.execute(
        MOMENTS_SQL, {"ids": meeting_ids, "q": query, "config": SEARCH_CONFIG}
    )
    return {row[0]: (float(row[1]), int(row[2])) for row in await cursor.fetchall()}
