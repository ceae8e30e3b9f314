"""Step 4 (after the meeting is done): transcript chunks embedded for search by meaning.

Consecutive segments are grouped into chunks of about CHUNK_WORDS words, so a chunk holds a
thought rather than half a sentence, and each keeps the time of its first segment: a hit
points at that moment of the recording. The llm service embeds them (its locked model); the
vectors go to `transcript_chunks`, replacing the meeting's old ones in one transaction.

Optional by design: a meeting is done before this runs, and an llm without an embedding model
leaves it keyword-searchable (logged; `inv search.reindex` fills the gap later).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from meetings.models import Meeting, MeetingStatus, Transcript, TranscriptChunk, TranscriptSegment
from worker.analyzer import EmbeddingsMissingError
from worker.resources import Resources

logger = logging.getLogger(__name__)

CHUNK_WORDS = 60
CHUNK_CHARS = 600
BATCH = 32  # texts per /v1/embed call (the service takes at most 64)


@dataclass(frozen=True)
class Chunk:
    segment_position: int
    start_seconds: float
    end_seconds: float
    text: str


def chunk_segments(segments: list[tuple[int, float, float, str]]) -> list[Chunk]:
    """Group (position, start, end, text) segments, in order, into chunks of ~CHUNK_WORDS."""
    chunks: list[Chunk] = []
    current: list[tuple[int, float, float, str]] = []
    words = 0
    for segment in segments:
        text = segment[3].strip()
        if not text:
            continue
        current.append(segment)
        words += len(text.split())
        if words >= CHUNK_WORDS or sum(len(s[3]) for s in current) >= CHUNK_CHARS:
            chunks.append(_chunk(current))
            current, words = [], 0
    if current:
        chunks.append(_chunk(current))
    return chunks


def _chunk(segments: list[tuple[int, float, float, str]]) -> Chunk:
    text = " ".join(s[3].strip() for s in segments)
    return Chunk(segments[0][0], segments[0][1], segments[-1][2], text)


def run(res: Resources, meeting_id: uuid.UUID, *, replace: bool = False) -> int:
    """Embed the meeting's chunks; the number written (0: already there, or nothing to do)."""
    if not res.settings.search_embeddings:
        return 0
    with res.sessions() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.status != MeetingStatus.DONE.value:
            return 0  # deleted, or failed: nothing to search
        have = session.scalar(
            select(TranscriptChunk.id).where(TranscriptChunk.meeting_id == meeting_id).limit(1)
        )
        if have is not None and not replace:
            return 0
        rows = session.execute(
            select(
                TranscriptSegment.position,
                TranscriptSegment.start_seconds,
                TranscriptSegment.end_seconds,
                TranscriptSegment.text,
            )
            .join(Transcript, Transcript.id == TranscriptSegment.transcript_id)
            .where(Transcript.meeting_id == meeting_id)
            .order_by(TranscriptSegment.position)
        ).all()
    chunks = chunk_segments([tuple(row) for row in rows])  # type: ignore[misc]
    if not chunks:
        return 0
    try:
        vectors: list[list[float]] = []
        model = ""
        for start in range(0, len(chunks), BATCH):
            reply = res.analyzer.embed([c.text for c in chunks[start : start + BATCH]])
            vectors += reply.vectors
            model = reply.model
    except EmbeddingsMissingError as exc:
        logger.warning("meeting %s stays keyword-searchable: %s", meeting_id, exc)
        return 0
    with res.sessions() as session, session.begin():
        # Replaced as a whole: a redelivered task or a reindex never leaves a mix behind.
        session.execute(delete(TranscriptChunk).where(TranscriptChunk.meeting_id == meeting_id))
        session.execute(
            insert(TranscriptChunk),
            [
                {
                    "meeting_id": meeting_id,
                    "position": position,
                    "segment_position": chunk.segment_position,
                    "start_seconds": chunk.start_seconds,
                    "end_seconds": chunk.end_seconds,
                    "text": chunk.text,
                    "model": model,
                    "embedding": vector,
                }
                for position, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
            ],
        )
    logger.info("embedded meeting %s: %d chunk(s) (%s)", meeting_id, len(chunks), model)
    return len(chunks)
