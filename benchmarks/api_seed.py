"""Seed a migrated database with finished meetings for the API benchmark, fast (COPY).

Transcripts are generated deterministically from meeting-like sentences: 300-800 words,
one segment per sentence, a summary, 1-4 action items and a search document each, so the
detail endpoint returns realistic payloads (~40 segments) and search has realistic
term frequencies (some topics in most meetings, some in few).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

SPEAKERS = ["Alice", "Bob", "Carol", "Dan", "Erin", "Farid", "Grace", "Hiro"]
# A meeting covers a few topics out of many; popular topics (early in the list) recur in
# many meetings, most appear in few, as in a real team's archive.
TOPICS = [
    f"the {subject} {thing}"
    for thing in ("budget", "roadmap", "release", "review", "migration", "contract")
    for subject in (
        "marketing",
        "mobile",
        "platform",
        "billing",
        "onboarding",
        "security",
        "data",
        "search",
        "support",
        "infrastructure",
        "partner",
        "design",
        "hiring",
        "analytics",
    )
]
DEADLINES = ["by Friday", "next week", "tomorrow", "by the end of the month", "before Monday"]
SENTENCES = [
    "I looked at {t} again yesterday and the numbers are better than last sprint.",
    "The main risk with {t} is that we depend on another team for the API changes.",
    "We agreed that {t} needs a clear owner before we commit to a date.",
    "Customers keep asking about {t}, so it should move up the list.",
    "Let's not change {t} until the metrics from the experiment are in.",
    "{s} thinks {t} can ship in two weeks if nothing else gets in the way.",
    "The feedback on {t} was mostly positive, with a few concerns about performance.",
    "We spent too long on {t} last time; this time we timebox it to one week.",
    "{s} will send the notes on {t} {d}.",
    "{s} will review {t} {d}.",
    "Does anyone have numbers on how {t} affects retention?",
    "I would rather split {t} into smaller pieces we can release separately.",
]


@dataclass(frozen=True)
class Seeded:
    ids: list[uuid.UUID]
    query_terms: list[str]
    topics_of: dict[uuid.UUID, list[str]]


def _topics_of_a_meeting(rng: random.Random) -> list[str]:
    # Zipf-like popularity: topic i is chosen with weight 1 / (i + 1).
    weights = [1 / (i + 1) for i in range(len(TOPICS))]
    return list({rng.choices(TOPICS, weights)[0] for _ in range(rng.randint(2, 4))})


def _sentence(rng: random.Random, topics: list[str]) -> str:
    template = rng.choice(SENTENCES)
    return template.format(t=rng.choice(topics), s=rng.choice(SPEAKERS), d=rng.choice(DEADLINES))


def _meetings(
    count: int, seed: int, topics_of: dict[uuid.UUID, list[str]] | None = None
) -> Iterator[tuple[uuid.UUID, datetime, list[str], int]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for number in range(count):
        meeting_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        topics = _topics_of_a_meeting(rng)
        if topics_of is not None:
            topics_of[meeting_id] = topics
        sentences: list[str] = []
        words = rng.randint(300, 800)
        while sum(len(s.split()) for s in sentences) < words:
            sentences.append(_sentence(rng, topics))
        yield meeting_id, start + timedelta(minutes=37 * number), sentences, rng.randint(1, 4)


def seed(url: str, count: int, *, seed: int = 7) -> Seeded:
    """Insert `count` finished meetings; `url` is a libpq URL of a database at head."""
    ids: list[uuid.UUID] = []
    topics_of: dict[uuid.UUID, list[str]] = {}
    rng = random.Random(seed + 1)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        transcripts_rows = []
        with cur.copy(
            "COPY meetings (id, title, status, media_filename, original_filename, content_type,"
            " size_bytes, created_at, updated_at, completed_at) FROM STDIN"
        ) as meetings:
            for meeting_id, created, sentences, items in _meetings(count, seed, topics_of):
                ids.append(meeting_id)
                kind = rng.choice(["Weekly sync", "Planning", "Review", "Standup"])
                title = f"{kind}: " + sentences[0].split(" the ", 1)[-1].split(" ")[0]
                meetings.write_row(
                    (
                        meeting_id,
                        title,
                        "done",
                        f"{meeting_id.hex}.wav",
                        "meeting.wav",
                        "audio/wav",
                        rng.randint(1_000_000, 90_000_000),
                        created,
                        created,
                        created + timedelta(minutes=3),
                    )
                )
                transcripts_rows.append((meeting_id, title, sentences, items))

        with cur.copy(
            "COPY transcripts (meeting_id, text, language, engine, model, audio_seconds,"
            " processing_seconds) FROM STDIN"
        ) as copy:
            for meeting_id, _, sentences, _ in transcripts_rows:
                seconds = 4.0 * len(sentences)
                copy.write_row(
                    (meeting_id, " ".join(sentences), "en", "pocketsphinx", "en-us", seconds, 9.5)
                )
        cur.execute("SELECT meeting_id, id FROM transcripts")
        transcript_ids: dict[object, object] = dict(cur.fetchall())

        with cur.copy(
            "COPY transcript_segments (transcript_id, position, start_seconds, end_seconds, text)"
            " FROM STDIN"
        ) as copy:
            for meeting_id, _, sentences, _ in transcripts_rows:
                transcript_id = transcript_ids[meeting_id]
                for position, sentence in enumerate(sentences):
                    copy.write_row(
                        (transcript_id, position, 4.0 * position, 4.0 * position + 3.6, sentence)
                    )

        with cur.copy(
            "COPY summaries (meeting_id, text, topics, engine, model) FROM STDIN"
        ) as summaries:
            for meeting_id, _, sentences, _ in transcripts_rows:
                summary = " ".join(sentences[:3])
                topics = sorted({t.removeprefix("the ") for t in TOPICS if t in summary})[:5]
                summaries.write_row((meeting_id, summary, Jsonb(topics), "extractive", "tr"))

        with cur.copy(
            "COPY action_items (meeting_id, position, text, owner, due) FROM STDIN"
        ) as copy:
            for meeting_id, _, _, items in transcripts_rows:
                for position in range(items):
                    copy.write_row(
                        (
                            meeting_id,
                            position,
                            f"Follow up: {rng.choice(sentences)}",
                            rng.choice(SPEAKERS),
                            rng.choice(DEADLINES),
                        )
                    )

        with cur.copy(
            "COPY search_documents (meeting_id, title, summary, transcript) FROM STDIN"
        ) as copy:
            for meeting_id, title, sentences, _ in transcripts_rows:
                copy.write_row((meeting_id, title, " ".join(sentences[:3]), " ".join(sentences)))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        # Write the freshly loaded pages out now, not during the measurement.
        conn.execute("CHECKPOINT")

    # What people search for: mostly specific topics, some single popular words.
    query_rng = random.Random(seed + 2)
    topics = [t.removeprefix("the ") for t in TOPICS]
    queries = [query_rng.choice(topics) for _ in range(200)]
    queries += [f'"{query_rng.choice(topics)}"' for _ in range(50)]
    queries += ["budget", "roadmap", "security review", "billing -migration", "hiring or design"]
    return Seeded(ids=ids, query_terms=queries, topics_of=topics_of)


def seed_embeddings(
    url: str, seeded: Seeded, embed: Callable[[list[str]], list[list[float]]], *, seed: int = 7
) -> int:
    """One embedded chunk per meeting, for search by meaning at scale without embedding
    millions of sentences: the mean of the real embeddings of the meeting's topics (the model
    embeds the 84 topic phrases once), plus a little noise so no two vectors are equal. The
    HNSW index is built after the load, as one would for a bulk import."""
    import numpy as np

    phrases = sorted({t for topics in seeded.topics_of.values() for t in topics})
    vectors = dict(zip(phrases, np.array(embed(phrases), dtype=np.float32), strict=True))
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS ix_transcript_chunks_embedding")
        with cur.copy(
            "COPY transcript_chunks (meeting_id, position, segment_position, start_seconds,"
            " end_seconds, text, model, embedding) FROM STDIN"
        ) as copy:
            for meeting_id, topics in seeded.topics_of.items():
                mean = np.mean([vectors[t] for t in topics], axis=0)
                vector = mean + rng.normal(0, 0.02, mean.shape).astype(np.float32)
                vector /= np.linalg.norm(vector)
                text = "We discussed " + ", ".join(topics) + "."
                literal = "[" + ",".join(f"{v:.6f}" for v in vector) + "]"
                copy.write_row((meeting_id, 0, 0, 0.0, 30.0, text, "seeded", literal))
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute(
            "CREATE INDEX ix_transcript_chunks_embedding ON transcript_chunks "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE transcript_chunks")
    return len(seeded.topics_of)
