"""`GET /api/v1/meetings/{id}` as one query: Postgres assembles the JSON document.

The detail view joins five tables (meeting, transcript, its segments, summary, action
items). Loading them through the ORM costs five round trips and thousands of Python
objects per request; letting Postgres build the document returns it in one round trip as
bytes that go to the client untouched (benchmarks/api_load.py measures the result). The
shape is the `MeetingOut` schema, which the tests check by validating documents against it.
"""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

MEETING_JSON_SQL = """
    SELECT json_build_object(
        'id', m.id,
        'title', m.title,
        'status', m.status,
        'error', m.error,
        'original_filename', m.original_filename,
        'content_type', m.content_type,
        'size_bytes', m.size_bytes,
        'created_at', m.created_at,
        'updated_at', m.updated_at,
        'completed_at', m.completed_at,
        'progress', m.progress,
        'vocabulary', m.vocabulary,
        'transcript', (
            SELECT json_build_object(
                'text', t.text,
                'language', t.language,
                'language_probability', t.language_probability,
                'engine', t.engine,
                'model', t.model,
                'audio_seconds', t.audio_seconds,
                'segments', coalesce((
                    SELECT json_agg(
                        json_build_object('start', s.start_seconds, 'end', s.end_seconds,
                                          'text', s.text, 'words', (
                            SELECT json_agg(json_build_object(
                                'start', w->0, 'end', w->1, 'word', w->2, 'probability', w->3))
                            FROM jsonb_array_elements(
                                CASE jsonb_typeof(s.words) WHEN 'array' THEN s.words END) AS w))
                        ORDER BY s.position)
                    FROM transcript_segments AS s WHERE s.transcript_id = t.id
                ), '[]'::json)
            )
            FROM transcripts AS t WHERE t.meeting_id = m.id
        ),
        'summary', su.text,
        'analysis', CASE WHEN su.id IS NULL THEN NULL ELSE
            json_build_object('engine', su.engine, 'model', su.model, 'note', su.note) END,
        'topics', coalesce(su.topics, '[]'::jsonb),
        'action_items', coalesce((
            SELECT json_agg(
                json_build_object('text', a.text, 'owner', a.owner, 'due', a.due)
                ORDER BY a.position)
            FROM action_items AS a WHERE a.meeting_id = m.id
        ), '[]'::json)
    )::text
    FROM meetings AS m
    LEFT JOIN summaries AS su ON su.meeting_id = m.id
    WHERE m.id = %(id)s
"""


async def meeting_json(conn: AsyncConnection, meeting_id: uuid.UUID) -> bytes | None:
    """The meeting's JSON document, or None when there is no such meeting."""
    cursor = await conn.execute(MEETING_JSON_SQL, {"id": meeting_id})
    row = await cursor.fetchone()
    return None if row is None else str(row[0]).encode()
