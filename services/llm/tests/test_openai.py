"""The OpenAI-compatible engine against a fake server speaking that API on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_service.config import LLMSettings
from llm_service.main import create_app

TRANSCRIPT = "Alice: Let's ship on Friday. Bob: I'll update the changelog by Thursday."
ANALYSIS = {
    "summary": "The team will ship on Friday.",
    "action_items": [{"text": "Update the changelog", "owner": "Bob", "due": "Thursday"}],
    "topics": ["release"],
}


@pytest.fixture
def service() -> Iterator[Callable[..., TestClient]]:
    stack: list[TestClient] = []

    def start(base_url: str, **overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "llm_engine": "openai",
            "openai_base_url": base_url,
            "openai_model": "qwen-test",
            "openai_timeout": 5.0,
            "openai_retries": 2,
            "llm_fallback": False,
            **overrides,
        }
        client = TestClient(create_app(LLMSettings(**values), ollama_backoff=0.01))
        client.__enter__()
        stack.append(client)
        return client

    yield start
    for client in reversed(stack):
        client.__exit__(None, None, None)


def analyze(client: TestClient, text: str = TRANSCRIPT) -> Any:
    return client.post("/v1/analyze", json={"text": text, "reference_date": "2025-02-26"})


def test_structured_output_by_json_schema_and_the_api_key(fake_openai: Any, service: Any) -> None:
    fake_openai.api_key = "sk-test-123"
    fake_openai.enqueue(fake_openai.reply(ANALYSIS))
    response = analyze(service(fake_openai.url, openai_api_key="sk-test-123"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["engine"], body["model"], body["note"]) == ("openai", "qwen-test", None)
    assert body["action_items"] == [
        {
            "text": "Update the changelog",
            "owner": "Bob",
            "due": "Thursday",
            "due_date": "2025-02-27",
        }
    ]
    [request] = fake_openai.requests
    assert request["model"] == "qwen-test" and request["temperature"] == 0
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert set(schema["required"]) == {"summary", "action_items", "topics"}
    assert "$ref" not in json.dumps(schema)
    assert TRANSCRIPT in request["messages"][1]["content"]


def test_a_wrong_api_key_is_a_503_naming_the_setting(fake_openai: Any, service: Any) -> None:
    fake_openai.api_key = "sk-right"
    response = analyze(service(fake_openai.url, openai_api_key="sk-wrong"))
    assert response.status_code == 503
    assert "refused the API key" in response.json()["detail"]
    assert "OPENAI_API_KEY" in response.json()["detail"]


def test_a_server_without_json_schema_gets_json_mode_and_the_schema_in_the_prompt(
    fake_openai: Any, service: Any
) -> None:
    fake_openai.reject_modes = {"json_schema"}
    fake_openai.default = lambda _r: fake_openai.reply("```json\n" + json.dumps(ANALYSIS) + "\n```")
    client = service(fake_openai.url)
    assert analyze(client).status_code == 200
    assert analyze(client).status_code == 200
    modes = [(r.get("response_format") or {}).get("type") for r in fake_openai.requests]
    # Refused once, then remembered: the second analysis goes straight to JSON mode.
    assert modes == ["json_schema", "json_object", "json_object"]
    assert '"action_items"' in fake_openai.requests[1]["messages"][0]["content"]


def test_no_structured_output_at_all_still_works_from_the_prompt(
    fake_openai: Any, service: Any
) -> None:
    fake_openai.reject_modes = {"json_schema", "json_object"}
    fake_openai.default = lambda _r: fake_openai.reply(ANALYSIS)
    assert analyze(service(fake_openai.url)).status_code == 200
    assert "response_format" not in fake_openai.requests[-1]


@pytest.mark.parametrize(
    "bad",
    [
        "not JSON",
        '{"summary": "ok", "action_items": "none", "topics": []}',
        '{"summary": "ok", "action_items": [{"owner": "Bob"}], "topics": []}',
        '{"action_items": [], "topics": []}',
    ],
)
def test_invalid_or_wrong_schema_replies_are_retried_then_a_502(
    fake_openai: Any, service: Any, bad: str
) -> None:
    fake_openai.default = lambda _r: fake_openai.reply(bad)
    response = analyze(service(fake_openai.url, openai_retries=1))
    assert response.status_code == 502
    assert "did not reply with the expected JSON after 2 attempts" in response.json()["detail"]
    assert len(fake_openai.requests) == 2


def test_a_cut_off_reply_is_invalid(fake_openai: Any, service: Any) -> None:
    fake_openai.default = lambda _r: fake_openai.reply('{"summary": "the te', "length")
    response = analyze(service(fake_openai.url, openai_retries=0))
    assert response.status_code == 502 and "max_tokens" in response.json()["detail"]


def test_a_slow_server_times_out_and_a_down_one_is_unavailable(
    fake_openai: Any, dead_url: str, service: Any
) -> None:
    fake_openai.default = lambda _r: fake_openai.slow(1)
    slow = analyze(service(fake_openai.url, openai_timeout=0.3, openai_retries=1))
    assert slow.status_code == 504 and "did not answer within 0.3s" in slow.json()["detail"]
    down = analyze(service(dead_url, openai_retries=0))
    assert down.status_code == 503 and "is not reachable" in down.json()["detail"]


def test_fallback_answers_with_extractive_and_says_why(fake_openai: Any, service: Any) -> None:
    fake_openai.default = lambda _r: fake_openai.reply("[]")
    response = analyze(service(fake_openai.url, openai_retries=0, llm_fallback=True))
    assert response.status_code == 200
    body = response.json()
    assert body["engine"] == "extractive" and body["action_items"]
    assert body["note"].startswith("openai failed: model 'qwen-test' did not reply")


def test_the_deadline_bounds_a_slow_model_and_falls_back(fake_openai: Any, service: Any) -> None:
    fake_openai.default = lambda _r: fake_openai.slow(1.5)
    client = service(fake_openai.url, llm_fallback=True, llm_deadline=0.5)
    response = analyze(client)
    assert response.status_code == 200
    assert "took longer than 0.5s (LLM_DEADLINE)" in response.json()["note"]


def test_a_long_transcript_is_analysed_in_parts_and_merged(fake_openai: Any, service: Any) -> None:
    line = "Alice: We discussed the roadmap and the budget for the next quarter at length."
    text = "\n".join([line] * 12 + ["Bob: I'll send the minutes by Friday."])

    def per_request(request: dict[str, Any]) -> Any:
        system = request["messages"][0]["content"]
        if "merge partial summaries" in system:
            return fake_openai.reply({"summary": "Roadmap, budget, minutes."})
        owner = "Bob" if "minutes" in request["messages"][1]["content"] else None
        items = [{"text": "Send the minutes", "owner": owner, "due": "Friday"}] if owner else []
        return fake_openai.reply({"summary": "part", "action_items": items, "topics": ["budget"]})

    fake_openai.default = per_request
    body = analyze(service(fake_openai.url, llm_chunk_chars=300), text).json()
    assert len(fake_openai.requests) > 2  # several parts plus the merge
    assert body["summary"] == "Roadmap, budget, minutes."
    assert body["action_items"] == [
        {"text": "Send the minutes", "owner": "Bob", "due": "Friday", "due_date": "2025-02-28"}
    ]
    assert body["topics"] == ["budget"]


PASSAGES = [
    {"title": "Budget review", "at": "00:12", "text": "Alice: the budget was approved."},
    {"title": "Hiring", "at": "01:05", "text": "Bob: two candidates are left."},
]


def test_answers_cite_only_the_passages_given(fake_openai: Any, service: Any) -> None:
    fake_openai.enqueue(
        fake_openai.reply({"answer": "It was approved.", "citations": [1, 1, 7], "supported": True})
    )
    body = (
        service(fake_openai.url)
        .post("/v1/answer", json={"question": "Was the budget approved?", "passages": PASSAGES})
        .json()
    )
    assert body == {
        "answer": "It was approved.",
        "citations": [1],
        "supported": True,
        "engine": "openai",
        "model": "qwen-test",
        "note": None,
    }
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "[1] Budget review at 00:12" in prompt and "[2] Hiring at 01:05" in prompt


def test_an_unsupported_answer_is_no_answer(fake_openai: Any, service: Any) -> None:
    fake_openai.enqueue(
        fake_openai.reply({"answer": "Probably Paris.", "citations": [], "supported": False})
    )
    body = (
        service(fake_openai.url)
        .post("/v1/answer", json={"question": "Where is the offsite?", "passages": PASSAGES})
        .json()
    )
    assert (body["answer"], body["citations"], body["supported"]) == (None, [], False)


def test_the_extractive_engine_generates_no_answer(dead_url: str, service: Any) -> None:
    client = service(dead_url, llm_engine="extractive")
    body = client.post("/v1/answer", json={"question": "Why?", "passages": PASSAGES}).json()
    assert (body["answer"], body["engine"], body["supported"]) == (None, "extractive", None)


@pytest.mark.parametrize(
    "body",
    [
        {"question": "", "passages": PASSAGES},
        {"question": "x" * 1001, "passages": PASSAGES},
        {"question": "Why?", "passages": []},
    ],
)
def test_bad_answer_requests_are_422(dead_url: str, service: Any, body: dict[str, Any]) -> None:
    client = service(dead_url, llm_engine="extractive")
    assert client.post("/v1/answer", json=body).status_code == 422


def test_embed_without_a_model_is_a_503_saying_how_to_pull_it(
    dead_url: str, service: Any, tmp_path: Any
) -> None:
    client = service(dead_url, llm_engine="extractive", embeddings_model_dir=str(tmp_path))
    response = client.post("/v1/embed", json={"texts": ["hello"]})
    assert response.status_code == 503
    assert "inv models.pull" in response.json()["detail"]
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ok" and ready["checks"]["embeddings"]["ok"] is False


def test_an_answer_its_citations_do_not_bear_out_is_no_answer(
    fake_openai: Any, service: Any
) -> None:
    # What a 1.5B model really did: answered from its own knowledge, citing a budget meeting.
    fake_openai.enqueue(fake_openai.reply({"answer": "Lima", "citations": [1], "supported": True}))
    body = (
        service(fake_openai.url)
        .post("/v1/answer", json={"question": "What is the capital of Peru?", "passages": PASSAGES})
        .json()
    )
    assert (body["answer"], body["supported"], body["citations"]) == (None, False, [])


def test_a_miscounted_citation_is_replaced_by_the_passage_that_bears_the_answer_out(
    fake_openai: Any, service: Any
) -> None:
    # What the 1.5B model really did with two passages given: cited a third.
    fake_openai.enqueue(
        fake_openai.reply(
            {"answer": "Two candidates are left.", "citations": [3], "supported": True}
        )
    )
    body = (
        service(fake_openai.url)
        .post("/v1/answer", json={"question": "How many are left?", "passages": PASSAGES})
        .json()
    )
    assert (body["answer"], body["citations"]) == ("Two candidates are left.", [2])
