"""Search by meaning and `ask`, with the real embedding model in the real llm service.

The meetings are on different subjects; each query shares no word with the meeting it is
about (after stemming and stop words), so only the embeddings can find it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from backend.config import BackendSettings
from backend.main import create_app
from meetings.models import vector_text
from mi_testing import ApiServer, free_port

API_TOKEN = "meaning-test-token-0123456789"

MEETINGS = {
    "budget": (
        "Quarterly finance review",
        "Alice: The finance committee approved the quarterly budget. Bob: Our costs for cloud "
        "servers went up by twenty percent. Alice: We must cut travel costs before the audit.",
    ),
    "hiring": (
        "Backend role interviews",
        "Carol: We interviewed three candidates for the backend engineer role. Dan: The second "
        "candidate had strong database skills. Carol: Let us send her an offer on Monday.",
    ),
    "office": (
        "Moving house",
        "Erin: The lease on the office in Lyon starts in March. Frank: Movers will pack the "
        "desks and chairs on the last Friday of February. Erin: The kitchen needs a coffee "
        "machine.",
    ),
    "outage": (
        "Payments incident",
        "Gina: Last night the payment service crashed for two hours. Hank: The root cause was "
        "an expired TLS certificate. Gina: We will add an alert thirty days before "
        "certificates expire.",
    ),
}


def embed(llm_url: str, texts: list[str]) -> list[list[float]]:
    reply = httpx.post(f"{llm_url}/v1/embed", json={"texts": texts}, timeout=60)
    assert reply.status_code == 200, reply.text
    vectors: list[list[float]] = reply.json()["vectors"]
    return vectors


@pytest.fixture
def meetings(
    database_url: str, llm_embeddings_url: str, add_meeting: Callable[..., uuid.UUID]
) -> dict[str, uuid.UUID]:
    """The four meetings, each with its segments and their chunks embedded (one per segment,
    as the worker's embed step stores them)."""
    ids = {}
    engine = create_engine(database_url)
    for key, (title, transcript) in MEETINGS.items():
        meeting_id = add_meeting(title=title, transcript=transcript, summary="")
        ids[key] = meeting_id
        segments = transcript.split(". ")
        vectors = embed(llm_embeddings_url, segments)
        with engine.begin() as conn:
            for position, (segment, vector) in enumerate(zip(segments, vectors, strict=True)):
                conn.execute(
                    text(
                        "INSERT INTO transcript_chunks (meeting_id, position, segment_position, "
                        "start_seconds, end_seconds, text, model, embedding) VALUES (:m, :p, :p, "
                        ":s, :e, :t, 'test', CAST(:v AS vector))"
                    ),
                    {"m": meeting_id, "p": position, "s": position * 2.0, "e": position * 2.0 + 1.5,
                     "t": segment, "v": vector_text(vector)},
                )  # fmt: skip
    engine.dispose()
    return ids


@pytest.fixture
def client(
    database_url: str, redis_url: str, media_dir: Path, llm_embeddings_url: str
) -> Iterator[httpx.Client]:
    settings = BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        media_dir=media_dir,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=llm_embeddings_url,
    )
    with (
        ApiServer(create_app(settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60
        ) as http,
    ):
        yield http


Search = Callable[..., dict[str, object]]


QUERIES = [
    ("money spent on infrastructure", "budget"),
    ("recruiting developers", "hiring"),
    ("relocating our workplace", "office"),
    ("systems went down overnight", "outage"),
]


def test_a_query_sharing_no_word_finds_the_right_meeting_first(
    client: httpx.Client, meetings: dict[str, uuid.UUID]
) -> None:
    for query, expected in QUERIES:
        keyword = client.get("/api/v1/search", params={"q": query, "mode": "keyword"}).json()
        assert keyword["items"] == [], query  # no word in common: full text finds nothing
        hybrid = client.get("/api/v1/search", params={"q": query}).json()
        assert hybrid["mode"] == "hybrid" and hybrid["note"] is None
        first = hybrid["items"][0]
        assert first["id"] == str(meetings[expected]), query
        assert first["matched"] == "semantic"
        assert first["segment"] is not None and first["start_seconds"] == first["segment"] * 2.0

    # A word they share: both lists agree, the hit keeps its highlighted snippet.
    body = client.get("/api/v1/search", params={"q": "certificate expired"}).json()
    first = body["items"][0]
    assert first["id"] == str(meetings["outage"])
    assert first["matched"] == "both" and "<mark>" in first["snippet"]

    for query in ("the and of", "?!% --"):  # only stop words or symbols
        body = client.get("/api/v1/search", params={"q": query}).json()
        assert body["items"] == [] and "only stop words or symbols" in body["note"]


def test_ask_cites_the_meeting_and_the_moment_and_says_when_nothing_supports_it(
    client: httpx.Client, meetings: dict[str, uuid.UUID]
) -> None:
    reply = client.post("/api/v1/ask", json={"question": "When do we get the keys to Lyon?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # The extractive engine generates no answer: the cited passages are the answer.
    assert body["answer"] is None and body["engine"] == "extractive"
    first = body["citations"][0]
    assert first["meeting_id"] == str(meetings["office"])
    assert first["title"] == "Moving house"
    assert (first["segment"], first["start_seconds"], first["at"]) == (0, 0.0, "0:00")
    assert "lease" in first["text"]

    body = client.post(
        "/api/v1/ask", json={"question": "What is the boiling point of ethanol?"}
    ).json()
    assert (body["answer"], body["supported"], body["citations"]) == (None, False, [])
    assert body["note"] == "Nothing in your meetings answers this question."

    for question in ("", "   ", "x" * 10_000):
        reply = client.post("/api/v1/ask", json={"question": question})
        assert reply.status_code == 422
        assert "question" in str(reply.json()["detail"])
