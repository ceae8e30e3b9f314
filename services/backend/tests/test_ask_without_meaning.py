"""`ask` when search by meaning is out of reach (here the llm service does not answer): it
cites the passages that share the question's words, never a 5xx and never an invented answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx


def test_the_question_s_words_find_the_passages_instead(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    keys = add_meeting(
        title="Lyon office", transcript="We get the keys to Lyon on Monday. Rent is due"
    )
    add_meeting(title="Hiring", transcript="Two engineers join in March. The budget allows it")
    reply = client.post("/api/v1/ask", json={"question": "When do we get the keys to Lyon?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["answer"] is None and body["engine"] is None
    assert "search by meaning is unavailable" in body["note"]
    first = body["citations"][0]
    assert first["meeting_id"] == str(keys) and "keys to Lyon" in first["text"]
    assert first["at"] == "0:00"
    assert all(c["meeting_id"] == str(keys) for c in body["citations"])


def test_a_question_sharing_no_word_is_unsupported_not_answered(
    client: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    add_meeting(title="Lyon office", transcript="We get the keys to Lyon on Monday")
    reply = client.post("/api/v1/ask", json={"question": "What is the boiling point of ethanol?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["supported"] is False and body["citations"] == []
    assert body["note"].startswith("Nothing in your meetings answers this question.")
